"""LuPRRT's terminology entry strings equal the ones Slicer's terminology logic serializes and parses."""

from __future__ import annotations

import pytest

from luprrt.segments import TYPE_CODES, SegmentTags, terminology_entry

# Every role, and the sided variants whose codes carry the side (a type or a region modifier).
TAGS = sorted({(role, None) for role in TYPE_CODES} | {("lobe", "right"), ("lobe", "left"), ("kidney", "right"),
                                                       ("kidney", "left"), ("lesion", "left"),
                                                       ("non-tumour", "right")}, key=lambda k: (k[0], k[1] or ""))

CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC = "Anatomic codes - DICOM master list"


def _set_code(code_object, code) -> None:
    scheme, value, meaning = code
    code_object.SetCodingSchemeDesignator(scheme)
    code_object.SetCodeValue(value)
    code_object.SetCodeMeaning(meaning)


def _code(code_object) -> tuple[str, str, str]:
    return (code_object.GetCodingSchemeDesignator() or "", code_object.GetCodeValue() or "",
            code_object.GetCodeMeaning() or "")


def _triple(code) -> tuple[str, str, str]:
    return (code.scheme, code.value, code.meaning) if code is not None else ("", "", "")


@pytest.mark.parametrize(("role", "side"), TAGS)
def test_entry_equals_slicers_serialization_and_parses_back(host, role, side):
    import slicer

    tags = SegmentTags(role, side=side, lesion_id="L01" if role == "lesion" else None)
    category, structure = tags.category_code(), tags.type_code()
    entry = slicer.vtkSlicerTerminologyEntry()
    entry.SetTerminologyContextName(CONTEXT)
    _set_code(entry.GetCategoryObject(), (category.scheme, category.value, category.meaning))
    _set_code(entry.GetTypeObject(), (structure.scheme, structure.value, structure.meaning))
    if tags.type_modifier() is not None:
        _set_code(entry.GetTypeModifierObject(), _triple(tags.type_modifier()))
    entry.SetRegionContextName(ANATOMIC)
    if tags.anatomic_region() is not None:
        _set_code(entry.GetRegionObject(), _triple(tags.anatomic_region()))
    if tags.anatomic_region_modifier() is not None:
        _set_code(entry.GetRegionModifierObject(), _triple(tags.anatomic_region_modifier()))
    logic = slicer.vtkSlicerTerminologiesModuleLogic
    assert terminology_entry(tags) == logic.SerializeTerminologyEntry(entry)

    parsed = slicer.vtkSlicerTerminologyEntry()
    assert logic().DeserializeTerminologyEntry(terminology_entry(tags), parsed)
    assert parsed.GetTerminologyContextName() == CONTEXT
    assert _code(parsed.GetTypeObject()) == (structure.scheme, structure.value, structure.meaning)
    assert _code(parsed.GetCategoryObject()) == (category.scheme, category.value, category.meaning)
    assert _code(parsed.GetRegionObject()) == _triple(tags.anatomic_region())
    assert _code(parsed.GetTypeModifierObject()) == _triple(tags.type_modifier())
    assert _code(parsed.GetRegionModifierObject()) == _triple(tags.anatomic_region_modifier())
