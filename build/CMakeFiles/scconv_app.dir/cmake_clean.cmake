file(REMOVE_RECURSE
  "CMakeFiles/scconv_app.dir/apps/main.cpp.o"
  "CMakeFiles/scconv_app.dir/apps/main.cpp.o.d"
  "scconv"
  "scconv.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/scconv_app.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
