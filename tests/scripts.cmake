# Tests that are scripts rather than cmocka programs. Both look at the
# product as shipped, so they run in the builds without sanitizers only (a
# sanitizer build's libraries would need the sanitizer runtime in a
# consumer, and carry the sanitizer's own symbols).
if(NOT KVRO_SANITIZE AND NOT KVRO_TSAN)
  # Install into a temporary prefix and build the README's example against
  # it: CMake package (shared and static, with and without pkg-config) and
  # pkg-config (kvro.pc).
  add_test(NAME install_consumer
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install_consumer.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(install_consumer PROPERTIES TIMEOUT 300)

  # Every external symbol of libkvro.a and every symbol libkvro.so exports
  # is kvro_* (internal ones kvro__*, and hidden in the .so).
  add_test(NAME symbols
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/symbols.sh $<TARGET_FILE:kvro_static>
      $<TARGET_FILE:kvro_shared> ${CMAKE_NM})
  set_tests_properties(symbols PROPERTIES TIMEOUT 120
    ENVIRONMENT "CC=${CMAKE_C_COMPILER};AR=${CMAKE_AR}")
endif()
