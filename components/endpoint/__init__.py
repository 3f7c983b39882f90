"""Model endpoints: workloads per version and the objects that route between them."""
