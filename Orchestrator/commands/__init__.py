"""One module per subcommand. Each exposes `HELP`, `add_arguments(parser)` and `run(args, ctx)`.

Modules import the managers inside `run`, never at the top: the command line is parsed and the
GPU pinned before any engine (and any CUDA library) is imported.
"""
