"""What every product stands on: the config base and loader, Ray at entrypoints (start or attach,
Ray Train runs), the training skeleton (run directories, device placement, optimizer and schedule,
progress), self-describing artifacts (`artifact.json`, `open_artifact`), Ray job specs, hardware
profiles, the TRM core and its size presets, Tune helpers and learning-curve plots. Nothing here
imports a product."""
