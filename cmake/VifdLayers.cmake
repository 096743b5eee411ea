# Layer boundaries. There is no project-wide include directory: each layer
# target gets an include root of its own in the build tree holding symlinks to
# exactly its header folders (or files), published as a usage requirement. A
# source therefore sees the headers of its own layer and of the layers it
# links, and nothing else: including a header of a layer the target does not
# link fails to compile. Headers keep their paths from the project root
# ("common/protocol/ring.h").

# vifd_layer_headers(<target> <path>...): expose <path>s (folders or single
# headers, relative to the project root) to <target> and its dependents.
function(vifd_layer_headers target)
  set(root ${PROJECT_BINARY_DIR}/include/${target})
  foreach(path IN LISTS ARGN)
    set(source ${PROJECT_SOURCE_DIR}/${path})
    if(NOT EXISTS ${source})
      message(FATAL_ERROR "${target}: header path ${path} does not exist")
    endif()
    get_filename_component(parent ${root}/${path} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${source} ${root}/${path} SYMBOLIC)
  endforeach()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${root})
  else()
    target_include_directories(${target} PUBLIC ${root})
  endif()
endfunction()

# vifd_layer_check(<target> CAN <header> CANNOT <header>...): ctests proving
# the boundary. Each compiles a one-line source with <target>'s include
# directories: <header> from CAN must be found, each CANNOT header must not.
function(vifd_layer_check target)
  cmake_parse_arguments(arg "" "CAN" "CANNOT" ${ARGN})
  set(includes "$<JOIN:$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>,|>")
  set(script ${PROJECT_SOURCE_DIR}/cmake/check_layer_include.cmake)
  string(MAKE_C_IDENTIFIER "${arg_CAN}" name)
  add_test(NAME layering_${target}_sees_${name}
           COMMAND ${CMAKE_COMMAND} -DCOMPILER=${CMAKE_CXX_COMPILER} -DTARGET=${target} -DINCLUDES=${includes}
                   -DHEADER=${arg_CAN} -DEXPECT=found -P ${script})
  foreach(header IN LISTS arg_CANNOT)
    string(MAKE_C_IDENTIFIER "${header}" name)
    add_test(NAME layering_${target}_cannot_see_${name}
             COMMAND ${CMAKE_COMMAND} -DCOMPILER=${CMAKE_CXX_COMPILER} -DTARGET=${target} -DINCLUDES=${includes}
                     -DHEADER=${header} -DEXPECT=missing -P ${script})
  endforeach()
endfunction()
