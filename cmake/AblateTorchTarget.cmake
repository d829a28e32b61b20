# ablate_torch_library(NAME DIR): a static library of DIR/*.cpp that uses LibTorch through the one
# shared precompiled header (pch/torch_pch.h), so <torch/torch.h> is parsed once per build.
function(ablate_torch_library name)
  file(GLOB _src CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  add_library(${name} STATIC ${_src})
  ablate_use_torch_pch(${name})
endfunction()

function(ablate_use_torch_pch target)
  target_link_libraries(${target} PUBLIC ablate::torch)
  if(TARGET ablate_torch_pch AND NOT target STREQUAL ablate_torch_pch)
    target_precompile_headers(${target} REUSE_FROM ablate_torch_pch)
  endif()
endfunction()
