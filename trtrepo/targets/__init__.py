"""Build targets: each turns an ExportedProgram into the files of one Triton model version."""
