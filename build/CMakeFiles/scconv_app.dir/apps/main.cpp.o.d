CMakeFiles/scconv_app.dir/apps/main.cpp.o: /work/main/apps/main.cpp \
 /usr/include/stdc-predef.h
