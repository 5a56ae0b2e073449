"""LuPRRT's terminology entry strings equal the ones Slicer's terminology logic serializes and parses."""

from __future__ import annotations

import pytest

from luprrt.segments import TYPE_CODES, SegmentTags, terminology_entry

CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC = "Anatomic codes - DICOM master list"
LIVER = ("SCT", "10200004", "Liver")  # anatomic region of a liver lesion


def _set_code(code_object, code) -> None:
    scheme, value, meaning = code
    code_object.SetCodingSchemeDesignator(scheme)
    code_object.SetCodeValue(value)
    code_object.SetCodeMeaning(meaning)


def _code(code_object) -> tuple[str, str, str]:
    return (code_object.GetCodingSchemeDesignator() or "", code_object.GetCodeValue() or "",
            code_object.GetCodeMeaning() or "")


@pytest.mark.parametrize(("role", "side"), sorted(TYPE_CODES, key=lambda key: (key[0], key[1] or "")))
def test_entry_equals_slicers_serialization_and_parses_back(host, role, side):
    import slicer

    tags = SegmentTags(role, side=side, lesion_id="L01" if role == "lesion" else None)
    category, structure = tags.category_code(), tags.type_code()
    entry = slicer.vtkSlicerTerminologyEntry()
    entry.SetTerminologyContextName(CONTEXT)
    _set_code(entry.GetCategoryObject(), (category.scheme, category.value, category.meaning))
    _set_code(entry.GetTypeObject(), (structure.scheme, structure.value, structure.meaning))
    entry.SetRegionContextName(ANATOMIC)
    if role == "lesion":
        _set_code(entry.GetRegionObject(), LIVER)
    logic = slicer.vtkSlicerTerminologiesModuleLogic
    assert terminology_entry(tags) == logic.SerializeTerminologyEntry(entry)

    parsed = slicer.vtkSlicerTerminologyEntry()
    assert logic().DeserializeTerminologyEntry(terminology_entry(tags), parsed)
    assert parsed.GetTerminologyContextName() == CONTEXT
    assert _code(parsed.GetTypeObject()) == (structure.scheme, structure.value, structure.meaning)
    assert _code(parsed.GetCategoryObject()) == (category.scheme, category.value, category.meaning)
    assert _code(parsed.GetRegionObject()) == (LIVER if role == "lesion" else ("", "", ""))
    assert _code(parsed.GetTypeModifierObject()) == _code(parsed.GetRegionModifierObject()) == ("", "", "")
