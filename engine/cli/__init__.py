"""The command line: the root `novelcraft` app, its shared conventions (shell), and the command groups
mounted when asked for."""
