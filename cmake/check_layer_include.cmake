# Run by the layering_* ctests (see vifd_layer_check in VifdLayers.cmake):
# preprocesses `#include "HEADER"` with the include directories INCLUDES
# ("|"-separated) and checks that HEADER is found (EXPECT=found) or that it
# is not found (EXPECT=missing). Any other failure fails the test.
set(flags)
string(REPLACE "|" ";" directories "${INCLUDES}")
foreach(directory IN LISTS directories)
  list(APPEND flags "-I${directory}")
endforeach()
# One probe per (target, header): ctest runs the checks in parallel.
string(MAKE_C_IDENTIFIER "${TARGET}_${HEADER}" stem)
set(probe "${CMAKE_CURRENT_BINARY_DIR}/layer_probe_${stem}.cc")
file(WRITE ${probe} "#include \"${HEADER}\"\n")
execute_process(COMMAND ${COMPILER} -std=c++20 -E -o /dev/null ${flags} ${probe}
                RESULT_VARIABLE result ERROR_VARIABLE errors)
file(REMOVE ${probe})
if(EXPECT STREQUAL "found")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${HEADER} should be visible but is not:\n${errors}")
  endif()
elseif(EXPECT STREQUAL "missing")
  if(result EQUAL 0)
    message(FATAL_ERROR "${HEADER} is visible to a layer that does not link its owner")
  endif()
  if(NOT errors MATCHES "${HEADER}: No such file or directory")
    message(FATAL_ERROR "preprocessing failed for another reason than the missing header:\n${errors}")
  endif()
  message(STATUS "${HEADER} not visible, as expected")
else()
  message(FATAL_ERROR "EXPECT must be found or missing")
endif()
