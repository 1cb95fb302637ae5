"""Checks a Factur-X PDF with the factur-x and pypdf packages.

Usage: python3 facturx_check.py INVOICE.pdf

Exits 0 and prints "ok" when the PDF embeds factur-x.xml as an Alternative associated file,
the XML is valid against the Factur-X EN 16931 XSD, and the XMP metadata declares PDF/A-3b and
the Factur-X EN 16931 conformance level. Otherwise prints what failed and exits 1.
"""

import sys

import facturx
from lxml import etree
from pypdf import PdfReader


def check(path):
    with open(path, "rb") as file:
        pdf = file.read()

    name, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    if name != "factur-x.xml" or not xml:
        return f"no XSD-valid factur-x.xml found (found {name!r})"
    facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    level = facturx.get_level(etree.fromstring(xml), "factur-x")
    if level != "en16931":
        return f"the XML is of level {level!r}, expected 'en16931'"

    reader = PdfReader(path)
    root = reader.trailer["/Root"]
    associated = root.get("/AF")
    if associated is None:
        return "the catalog has no /AF array"
    relationships = [spec.get_object().get("/AFRelationship") for spec in associated]
    if "/Alternative" not in relationships:
        return f"no associated file with /AFRelationship /Alternative: {relationships}"

    xmp = root["/Metadata"].get_object().get_data().decode("utf-8")
    for expected in (
        "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
        "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>",
        "<fx:DocumentType>INVOICE</fx:DocumentType>",
        "<fx:Version>1.0</fx:Version>",
        "<pdfaSchema:prefix>fx</pdfaSchema:prefix>",
    ):
        if expected not in xmp:
            return f"the XMP metadata lacks {expected}"
    if "pdfaid:part" not in xmp or "3" not in xmp.split("pdfaid:part")[1][:8]:
        return "the XMP metadata does not declare PDF/A part 3"
    return None


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    problem = check(sys.argv[1])
    if problem:
        print(problem)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
