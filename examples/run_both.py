"""Run both demo apps in one interpreter and show which Flask each one got."""

import sys

import bizbaz
import foobar

bizbaz.main()
foobar.main()
flasks = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0].startswith("flask")})
print(f"flask packages loaded in this interpreter: {', '.join(flasks)}")
