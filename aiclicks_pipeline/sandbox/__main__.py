"""`python -m aiclicks_pipeline.sandbox`: run the sandbox in the foreground."""

import argparse
import sys

from . import add_arguments, serve


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aiclicks_pipeline.sandbox", description=__doc__, allow_abbrev=False
    )
    return serve(add_arguments(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
