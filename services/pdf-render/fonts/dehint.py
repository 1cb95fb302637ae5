"""Removes the TrueType hinting from one font file and keeps the other tables' contents.

The four bundled Noto Sans and Noto Sans Arabic files went through it once:

    pip install fonttools==4.68.0
    for name in NotoSans-Regular NotoSans-Bold NotoSansArabic-Regular NotoSansArabic-Bold; do
        python dehint.py /usr/share/fonts/truetype/noto/$name.ttf $name.ttf
    done

Hinting is bytecode that snaps outlines to the pixel grid at small sizes on screens. It was
about half of each compressed font subset in every PDF, and the export deflates the subsets
again per invoice. Poppler 22.12 (pdftoppm at 150 dpi), which draws without hinting, renders
all 412 demo invoices pixel for pixel the same before and after, so outlines and positions
are unchanged. A viewer that applies TrueType hinting on screen may draw small text slightly
differently.

When fontTools saves the font it also rewrites loca (with short offsets where glyf is small
enough) and recalculates the head checksum and maxp.maxComponentDepth.

NOTE: Adobe's PDF Reference 1.7 lists cvt, fpgm and prep as always required in an embedded
TrueType program, while Microsoft's TrueType font recommendations define them only where
font instructions need them. No PDF/A validator has checked the invoices made with these
fonts.
"""

import sys

from fontTools.ttLib import TTFont

if len(sys.argv) != 3:
    sys.exit("usage: python dehint.py SOURCE.ttf OUTPUT.ttf")
source, output = sys.argv[1], sys.argv[2]
font = TTFont(source, recalcTimestamp=False)
glyf = font["glyf"]
for name in font.getGlyphOrder():
    glyf[name].removeHinting()
# The font program, the control value program and table, and the tables derived from hinted
# rendering. DSIG is an empty placeholder in the Noto files, and a real signature would no
# longer match the changed bytes.
for tag in ("fpgm", "prep", "cvt ", "hdmx", "LTSH", "VDMX", "DSIG"):
    if tag in font:
        del font[tag]
maxp = font["maxp"]
maxp.maxZones = 1
for field in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
              "maxStackElements", "maxSizeOfInstructions"):
    setattr(maxp, field, 0)
font.save(output)
