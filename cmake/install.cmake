# `cmake --install` / `make install PREFIX=...`: one library (libnub.a and
# libnub.so), the public headers, nub-guest where the library looks for it,
# the CLI, a pkg-config file and a CMake package (find_package(nub) gives
# nub::nub, and nub::nub_static).

install(TARGETS nub_static nub_shared EXPORT nubTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/nub DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(TARGETS nub-guest DESTINATION ${NUB_GUEST_INSTALL_DIR})
install(TARGETS nub DESTINATION ${CMAKE_INSTALL_BINDIR})

# pkg-config: `pkg-config --cflags --libs nub` (shared), `--static` adds
# what libnub.a needs (libsodium, threads).
configure_file(${PROJECT_SOURCE_DIR}/cmake/nub.pc.in ${PROJECT_BINARY_DIR}/nub.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/nub.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

include(CMakePackageConfigHelpers)
set_target_properties(nub_shared PROPERTIES EXPORT_NAME nub)
set_target_properties(nub_static PROPERTIES EXPORT_NAME nub_static)
install(EXPORT nubTargets NAMESPACE nub:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nub)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/nubConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nubConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nub)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nubConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nubConfig.cmake ${PROJECT_BINARY_DIR}/nubConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nub)
