# Tests that are scripts rather than cmocka programs.

# Install into a temporary prefix and build the README's example against it
# (CMake package and pkg-config, shared and static). A sanitizer build's
# libraries would need the sanitizer runtime in the consumer, so this runs
# in the plain build only.
if(NOT KVRO_SANITIZE)
  add_test(NAME install_consumer
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install_consumer.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(install_consumer PROPERTIES TIMEOUT 300)
endif()
