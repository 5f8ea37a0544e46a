"""The small check runner shared by the compatibility scripts: PASS/FAIL lines and counts."""

import sys
import traceback


class CheckFailed(Exception):
    pass


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def expect_eq(actual, wanted, what: str) -> None:
    if actual != wanted:
        raise CheckFailed(f"{what}: got {actual!r}, want {wanted!r}")


class Runner:
    """Runs named checks. `describe` maps exception types that are expected findings (e.g. an
    SDK's API error) to a one-line description; anything else also prints its traceback."""

    def __init__(self, describe=None) -> None:
        self.passed = 0
        self.failed = 0
        self.describe = describe or {}

    def check(self, name: str, fn) -> bool:
        try:
            fn()
        except CheckFailed as e:
            self._fail(name, str(e))
            return False
        except Exception as e:  # noqa: BLE001 - anything unexpected is a finding too
            for kind, describe in self.describe.items():
                if isinstance(e, kind):
                    self._fail(name, describe(e))
                    return False
            self._fail(name, f"{type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stdout)
            return False
        print(f"PASS {name}", flush=True)
        self.passed += 1
        return True

    def skip_as_failed(self, name: str, why: str) -> None:
        self._fail(name, why)

    def _fail(self, name: str, why: str) -> None:
        print(f"FAIL {name}: {why}", flush=True)
        self.failed += 1
