"""Removes the TrueType hinting from one font file and keeps every other table as it is.

The four bundled Noto Sans and Noto Sans Arabic files went through it once:

    pip install fonttools==4.68.0
    python dehint.py /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf NotoSans-Regular.ttf

Hinting is bytecode that snaps outlines to the pixel grid at small sizes on screens. An
invoice PDF is read zoomed or printed, where it changes little: Poppler (pdftoppm at 150
dpi) draws ten of the demo's invoices pixel for pixel the same without it. Yet it was about
half of each compressed font subset in every PDF, and the export deflates the subsets again
per invoice.
"""

import sys

from fontTools.ttLib import TTFont

source, output = sys.argv[1], sys.argv[2]
font = TTFont(source, recalcTimestamp=False)
glyf = font["glyf"]
for name in font.getGlyphOrder():
    glyf[name].removeHinting()
# The font program, the control value program and table, and the tables derived from hinted
# rendering. DSIG signs the original bytes and would no longer match.
for tag in ("fpgm", "prep", "cvt ", "hdmx", "LTSH", "VDMX", "DSIG"):
    if tag in font:
        del font[tag]
maxp = font["maxp"]
maxp.maxZones = 1
for field in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
              "maxStackElements", "maxSizeOfInstructions"):
    setattr(maxp, field, 0)
# Bit 4: instructions may change advance widths. Without instructions they cannot.
font["head"].flags &= ~(1 << 4)
font.save(output)
