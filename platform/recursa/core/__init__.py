"""What every product stands on: the config base and loader, Ray at entrypoints (start or attach,
Ray Train runs), Ray job specs, hardware profiles, the TRM core and its size presets, Tune helpers
and learning-curve plots. Nothing here imports a product."""
