# Empty dependencies file for scconv.
# This may be replaced when dependencies are built.
