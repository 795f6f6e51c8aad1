# cmake -DQEMU=... -DDIGEST=... -DEXE=... -DNAME=... -P check_qemu.cmake
# Workload NAME's guest objects linked for Linux (EXE, workloads/qemu_main.c)
# and run under qemu-riscv64 must print the digest the native build gives.
execute_process(COMMAND ${DIGEST} ${NAME} OUTPUT_VARIABLE native RESULT_VARIABLE rc1
                OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REGEX MATCH "[0-9]+$" n "${native}")
execute_process(COMMAND ${QEMU} ${EXE} ${n} OUTPUT_VARIABLE guest RESULT_VARIABLE rc2 TIMEOUT 120
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0)
  message(FATAL_ERROR "${NAME}: native exit ${rc1}, qemu-riscv64 exit ${rc2}")
endif()
string(REGEX MATCH "^[0-9a-f]+" native_digest "${native}")
if(NOT guest MATCHES "^[0-9a-f]+$" OR NOT guest STREQUAL native_digest)
  message(FATAL_ERROR "${NAME}: qemu-riscv64 printed '${guest}', native ${native}")
endif()
message("${NAME}: ${guest} on qemu-riscv64 and natively (n = ${native})")
