"""Training: embodied self-supervised learning of the EAMI network."""
