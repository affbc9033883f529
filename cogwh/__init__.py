"""cogwh: the command line and the local stack (emulator, Cognigy simulator, demo)."""
