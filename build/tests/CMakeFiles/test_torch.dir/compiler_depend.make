# Empty compiler generated dependencies file for test_torch.
# This may be replaced when dependencies are built.
