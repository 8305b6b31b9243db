"""The release pipeline: smoke tests of a deployed server, container images of a model."""
