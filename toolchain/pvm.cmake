# Build C sources into a PVM program at build time (docs/toolchain.md):
#
#   nub_pvm_program(NAME SOURCES a.c b.c [CFLAGS ...] [LDFLAGS ...]
#                   [LINKFLAGS ...] [INCLUDES dir ...])
#
# compiles each source with clang-19 and the flags of docs/toolchain.md
# (CFLAGS are added, later ones win), links ${NAME}.elf with ld.lld-19
# --emit-relocs -T toolchain/pvm.ld (LDFLAGS added), and translates it
# into ${NAME}.pvm with `nub link` (LINKFLAGS added, e.g. --profile jamv1),
# all in CMAKE_CURRENT_BINARY_DIR; target ${NAME}_pvm builds it (ALL).
# Without clang-19 or ld.lld-19 it warns and defines nothing:
# NUB_PVM_TOOLCHAIN_FOUND says which.
find_program(NUB_CLANG19 clang-19)
find_program(NUB_LLD19 ld.lld-19)
set(NUB_PVM_TOOLCHAIN_FOUND FALSE)
if(NUB_CLANG19 AND NUB_LLD19)
  set(NUB_PVM_TOOLCHAIN_FOUND TRUE)
endif()
set(NUB_PVM_LINKER_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/pvm.ld)
set(NUB_PVM_CFLAGS --target=riscv64 -march=rv64emac_zbb -mabi=lp64e -mcmodel=medlow
    -mno-relax -fno-pic -msmall-data-limit=0 -ffreestanding -fno-builtin
    -ffunction-sections -fdata-sections -O2)

function(nub_pvm_program name)
  cmake_parse_arguments(P "" "" "SOURCES;CFLAGS;LDFLAGS;LINKFLAGS;INCLUDES" ${ARGN})
  if(NOT NUB_PVM_TOOLCHAIN_FOUND)
    message(WARNING "nub_pvm_program(${name}): clang-19 or ld.lld-19 missing "
                    "(scripts/deps.sh installs them); ${name}.pvm is not built")
    return()
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${name}.pvm.d)
  set(objs)
  set(incs)
  foreach(i ${P_INCLUDES})
    list(APPEND incs -I${i})
  endforeach()
  foreach(src ${P_SOURCES})
    get_filename_component(abs ${src} ABSOLUTE)
    get_filename_component(base ${src} NAME_WE)
    set(obj ${dir}/${base}.o)
    add_custom_command(OUTPUT ${obj}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
      COMMAND ${NUB_CLANG19} ${NUB_PVM_CFLAGS} ${P_CFLAGS} ${incs} -MD -MF ${obj}.d
              -c ${abs} -o ${obj}
      DEPENDS ${abs} DEPFILE ${obj}.d
      COMMENT "clang-19 (RV64E) ${src}" VERBATIM)
    list(APPEND objs ${obj})
  endforeach()
  set(elf ${CMAKE_CURRENT_BINARY_DIR}/${name}.elf)
  set(pvm ${CMAKE_CURRENT_BINARY_DIR}/${name}.pvm)
  add_custom_command(OUTPUT ${elf}
    COMMAND ${NUB_LLD19} --emit-relocs -T ${NUB_PVM_LINKER_SCRIPT} ${P_LDFLAGS} ${objs} -o ${elf}
    DEPENDS ${objs} ${NUB_PVM_LINKER_SCRIPT} COMMENT "ld.lld-19 ${name}.elf" VERBATIM)
  add_custom_command(OUTPUT ${pvm}
    COMMAND $<TARGET_FILE:nub> link ${elf} -o ${pvm} ${P_LINKFLAGS}
    DEPENDS ${elf} nub COMMENT "nub link ${name}.pvm" VERBATIM)
  add_custom_target(${name}_pvm ALL DEPENDS ${pvm})
endfunction()
