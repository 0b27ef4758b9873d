"""The command line: argparse, dispatch, and the exit codes in one place."""
