"""Model files: our checkpoint format, the safe StyleGAN2-ADA pickle importer and the models-folder library."""
