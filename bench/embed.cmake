# Writes OUT, a C file holding every bench .s source as a string so that
# `nub bench` needs no files at run time.  SOURCES: the .s paths joined by
# '|' (a CMake list would split on the command line).
string(REPLACE "|" ";" sources "${SOURCES}")
set(body "/* Generated from the bench .s files by bench/embed.cmake; do not edit. */\n")
string(APPEND body "#include \"bench.h\"\n\nconst bench_source bench_sources[] = {\n")
foreach(src IN LISTS sources)
  get_filename_component(name "${src}" NAME_WE)
  file(READ "${src}" text)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "\"" "\\\"" text "${text}")
  string(REPLACE "\n" "\\n\"\n    \"" text "${text}")
  string(APPEND body "  {\"${name}\",\n    \"${text}\"},\n")
endforeach()
string(APPEND body "  {0, 0},\n};\n")
file(WRITE "${OUT}" "${body}")
