"""The Triton model repository: config.pbtxt through Triton's protobuf, the manifest, and the atomic writer."""
