"""The turn loop, audio I/O, barge-in, the command line and service glue."""
