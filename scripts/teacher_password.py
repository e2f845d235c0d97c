"""Make a new teacher's password for the app's database and print it (the old one stops working).

    python -m scripts.teacher_password
    DIGIT_ZOO_DATABASE_URL=postgresql://teacher@db-host/digit_zoo python -m scripts.teacher_password

For a server started without DIGIT_ZOO_TEACHER_PASSWORD, whose first start
printed a password in its log: a teacher who lost it makes another here.
Signed-in sessions stay signed in until they sign out.
"""

from __future__ import annotations

import argparse
import sys

from model_zoo import db, teacher


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    if teacher.from_environment():
        print(
            f"{teacher.PASSWORD_VARIABLE} is set: the server uses it, not the database's password. "
            "Change it there and restart the server.",
            file=sys.stderr,
        )
        return 2
    print(f"Teacher password for the {db.describe()}: {teacher.reset()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
