"""Neural field components: decoders and latent layouts."""
