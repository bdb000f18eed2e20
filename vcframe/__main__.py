"""``python -m vcframe ...`` (the same as the ``vcframe`` command; handy under ``torchrun -m vcframe``)."""

from vcframe.cli import main

if __name__ == "__main__":
    main()
