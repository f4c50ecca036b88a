# Empty dependencies file for scconv_app.
# This may be replaced when dependencies are built.
