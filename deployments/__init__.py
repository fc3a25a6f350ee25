"""Ray Serve side of Sapheneia: the ingress, the model server and the builder that wires them."""
