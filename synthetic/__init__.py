"""Synthetic experiments of Menon et al. (2020), section 5: linear models in NumPy/SciPy."""
