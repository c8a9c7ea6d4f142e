"""phuber: partially Huberised losses for learning with label noise (Menon et al., ICLR 2020)."""
