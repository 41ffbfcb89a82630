"""Pure PyTorch parts of IRFA: attention, generator, discriminator, losses (no NWB, no xarray)."""
