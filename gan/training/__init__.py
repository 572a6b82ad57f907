"""Training internals: the GAN LightningModule (the SNGAN iteration), its losses, the divergence guard, the loggers
and the execution modes (eager, direct, compiled, CUDA graphs) that run its steps."""
