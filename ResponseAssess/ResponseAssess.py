"""ResponseAssess: lesion tracking across time points, longest axial diameter and RECIST 1.1.

Panel: measure every lesion's longest axial diameter and short axis (a markups line shows
each long axis; a line the reader moves or draws wins), track the follow-up lesions to the
baseline ones (CT-to-CT registration, one-to-one matching, new/disappeared/split/merged
events), and assess RECIST 1.1 per time point and best overall response, with per-lesion
outcome tables and spider/waterfall charts. Every step is callable from the Logic without
the panel; the computation lives in the ``luprrt`` core.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from luprrt import mrml
from luprrt.grid import LPS_TO_RAS
from luprrt.provenance import ProgressCallback, no_progress

# Attribute of a measurement table built from diameter tables (rebuilt, not edited, on the next run).
BUILT_FROM_DIAMETERS_ATTRIBUTE = "LuPRRT.BuiltFromDiameterTables"
REGISTRATION_REFERENCE_ROLE = "registrationTransform"


#
# ResponseAssess
#
class ResponseAssess(ScriptedLoadableModule):
    """Module metadata (title, category, help and acknowledgement)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Response Assessment")
        self.parent.categories = [f"{translate('qSlicerAbstractCoreModule', 'Nuclear Medicine')}.LuPRRT"]
        self.parent.dependencies = ["LuPRRTExtension"]  # the hidden library module: luprrt on the path
        self.parent.contributors = ["LuPRRT Developers (LuPRRT project)"]
        self.parent.helpText = _(
            "Tumour response after 177Lu-dotatate PRRT. <b>Measure</b>: longest axial diameter and "
            "perpendicular short axis of every lesion segment (segments tagged as lesions with a tracking "
            "id), shown as markups lines; move a line to override the measurement. <b>Track</b>: register "
            "the follow-up CT to the baseline CT and give follow-up lesions the baseline tracking ids "
            "(new, disappeared, split and merged lesions are reported). <b>Assess</b>: RECIST 1.1 response "
            "per time point, best overall response, per-lesion change and spider/waterfall charts. "
            'See <a href="https://github.com/luprrt/SlicerLuPRRT">the LuPRRT documentation</a>.')
        self.parent.acknowledgementText = _(
            "Part of LuPRRT, quantitative imaging for 177Lu-dotatate PRRT of neuroendocrine liver "
            "metastases. Response criteria: Eisenhauer EA et al., New response evaluation criteria in "
            "solid tumours: revised RECIST guideline (version 1.1), Eur J Cancer 2009;45:228-247.")


#
# ResponseAssessParameterNode
#
@parameterNodeWrapper
class ResponseAssessParameterNode:
    """Inputs, outputs and settings of the panel (saved with the scene).

    baselineSegmentation, followupSegmentation : lesion segments of each time point
    baselineCtVolume, followupCtVolume : CTs used to register the follow-up to the baseline
    patientId, baselineDate, followupDate : patient and ISO imaging dates (YYYY-MM-DD) of the
        RECIST measurement table built from the diameter tables
    measurementsTable : tidy RECIST measurement table (one row per lesion and date)
    maxMatchDistanceMm : largest centroid distance of two matched lesions without overlap, mm
    responseDecreasePct, progressionIncreasePct, progressionMinIncreaseMm : RECIST 1.1 PR and PD limits
    tooSmallToMeasureMm : diameter given to a lesion too small to measure, mm
    sliceThicknessMm : CT slice thickness (measurable size is 10 mm or twice it), mm
    requireConfirmation, confirmationDays, minStableDiseaseDays : best-response rules, days
    """

    baselineSegmentation: vtkMRMLSegmentationNode
    baselineCtVolume: vtkMRMLScalarVolumeNode
    followupSegmentation: vtkMRMLSegmentationNode
    followupCtVolume: vtkMRMLScalarVolumeNode
    patientId: str = ""
    baselineDate: str = ""
    followupDate: str = ""
    measurementsTable: vtkMRMLTableNode
    baselineDiametersTable: vtkMRMLTableNode
    followupDiametersTable: vtkMRMLTableNode
    trackedSegmentation: vtkMRMLSegmentationNode
    lesionEventsTable: vtkMRMLTableNode
    timePointTable: vtkMRMLTableNode
    bestResponseTable: vtkMRMLTableNode
    lesionOutcomeTable: vtkMRMLTableNode
    registerFollowup: bool = True
    maxMatchDistanceMm: Annotated[float, WithinRange(1.0, 100.0)] = 20.0
    responseDecreasePct: Annotated[float, WithinRange(1.0, 100.0)] = 30.0
    progressionIncreasePct: Annotated[float, WithinRange(1.0, 200.0)] = 20.0
    progressionMinIncreaseMm: Annotated[float, WithinRange(0.0, 50.0)] = 5.0
    tooSmallToMeasureMm: Annotated[float, WithinRange(0.0, 20.0)] = 5.0
    sliceThicknessMm: Annotated[float, WithinRange(0.1, 20.0)] = 5.0
    requireConfirmation: bool = True
    confirmationDays: Annotated[int, WithinRange(0, 365)] = 28
    minStableDiseaseDays: Annotated[int, WithinRange(0, 365)] = 42


#
# ResponseAssessWidget
#
class ResponseAssessWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: gathers inputs, calls the Logic, shows results."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ResponseAssess.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ResponseAssessLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.assignIdsButton.connect("clicked(bool)", self.onAssignIdsButton)
        self.ui.measureButton.connect("clicked(bool)", self.onMeasureButton)
        self.ui.trackButton.connect("clicked(bool)", self.onTrackButton)
        self.ui.assessButton.connect("clicked(bool)", self.onAssessButton)
        self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicomButton)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Slicer calls this alone when it reloads or unloads the module (no exit()): disconnect the
        parameter node from this panel too, or it keeps updating the old widgets."""
        self.setParameterNode(None)
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onReload(self) -> None:
        """Reload the helper package too (Slicer's reload only re-imports this file)."""
        import importlib
        import sys

        helpers = [n for n in sys.modules if n == "ResponseAssessLib" or n.startswith("ResponseAssessLib.")]
        for name in helpers:
            importlib.reload(sys.modules[name])
        ScriptedLoadableModuleWidget.onReload(self)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode: ResponseAssessParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        """Enable each step only when its inputs are complete; the tooltip says what is missing."""
        p = self._parameterNode
        steps = (
            (self.ui.assignIdsButton, _("Give untagged lesion segments of the baseline the next free ids."),
             None if p.baselineSegmentation else _("Select the baseline segmentation.")),
            (self.ui.measureButton,
             _("Measure the lesions of the baseline (and tracked follow-up) segmentation."),
             None if p.baselineSegmentation else _("Select the baseline segmentation.")),
            (self.ui.trackButton, _("Give the follow-up lesions the baseline tracking ids."),
             self._trackProblem(p)),
            (self.ui.assessButton, _("Assess RECIST 1.1 and the per-lesion outcome."),
             self._assessProblem(p)),
            (self.ui.exportDicomButton, _("Write DICOM SEG and a TID 1500 report of each time point to a folder."),
             None if p.measurementsTable and (p.baselineCtVolume or p.followupCtVolume)
             else _("Assess RECIST 1.1 first, with the CTs loaded from DICOM.")),
        )
        for button, ready, problem in steps:
            button.enabled = problem is None
            button.toolTip = ready if problem is None else problem

    @staticmethod
    def _trackProblem(p) -> str | None:
        if not (p.baselineSegmentation and p.followupSegmentation):
            return _("Select the baseline and follow-up segmentations.")
        if p.registerFollowup and bool(p.baselineCtVolume) != bool(p.followupCtVolume):
            return _("Registration needs both CT volumes (or untick registration).")
        return None

    @staticmethod
    def _assessProblem(p) -> str | None:
        if p.measurementsTable and p.measurementsTable.GetAttribute(BUILT_FROM_DIAMETERS_ATTRIBUTE) is None:
            return None
        if not (p.baselineDiametersTable and p.followupDiametersTable):
            return _("Select a measurement table, or measure both time points first.")
        if not p.patientId.strip():
            return _("Enter the patient ID.")
        try:
            first, second = date.fromisoformat(p.baselineDate), date.fromisoformat(p.followupDate)
        except ValueError:
            return _("Enter both imaging dates as YYYY-MM-DD.")
        return None if first < second else _("The follow-up date must be after the baseline date.")

    def _progress(self, fraction: float, message: str) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        self.ui.progressBar.format = f"{message} (%p%)"
        slicer.app.processEvents()

    def onAssignIdsButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to assign lesion tracking ids."), waitCursor=True):
            self.logic.assignLesionIds(self._parameterNode.baselineSegmentation)

    def onMeasureButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to measure the lesion diameters."), waitCursor=True):
            p = self._parameterNode
            p.baselineDiametersTable = self.logic.measureLesionDiameters(
                p.baselineSegmentation, manualLineNodes=self.logic.userEditedLines(p.baselineSegmentation),
                tableNode=p.baselineDiametersTable, progress=self._progress)
            followup = p.trackedSegmentation or p.followupSegmentation
            if followup:
                p.followupDiametersTable = self.logic.measureLesionDiameters(
                    followup, manualLineNodes=self.logic.userEditedLines(followup),
                    tableNode=p.followupDiametersTable, progress=self._progress)
            self._showTable(p.baselineDiametersTable)

    def onTrackButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to track the follow-up lesions."), waitCursor=True):
            p = self._parameterNode
            p.trackedSegmentation, p.lesionEventsTable = self.logic.matchLesions(
                p.baselineSegmentation, p.followupSegmentation, p.baselineCtVolume, p.followupCtVolume,
                register=p.registerFollowup, maxDistanceMm=p.maxMatchDistanceMm,
                outputSegmentationNode=p.trackedSegmentation, eventsTableNode=p.lesionEventsTable,
                progress=self._progress)
            self._showTable(p.lesionEventsTable)

    def onAssessButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to assess the response."), waitCursor=True):
            p = self._parameterNode
            if not p.measurementsTable or p.measurementsTable.GetAttribute(BUILT_FROM_DIAMETERS_ATTRIBUTE):
                diameterTables = {p.baselineDate: p.baselineDiametersTable,
                                  p.followupDate: p.followupDiametersTable}
                p.measurementsTable = self.logic.createMeasurementsTable(
                    p.patientId, diameterTables, sliceThicknessMm=p.sliceThicknessMm,
                    tableNode=p.measurementsTable)
            p.timePointTable, p.bestResponseTable, p.lesionOutcomeTable = self.logic.assessRecist(
                p.measurementsTable, responseDecreasePct=p.responseDecreasePct,
                progressionIncreasePct=p.progressionIncreasePct,
                progressionMinIncreaseMm=p.progressionMinIncreaseMm,
                tooSmallToMeasureMm=p.tooSmallToMeasureMm, sliceThicknessMm=p.sliceThicknessMm,
                requireConfirmation=p.requireConfirmation, confirmationDays=p.confirmationDays,
                minStableDiseaseDays=p.minStableDiseaseDays, timePointTableNode=p.timePointTable,
                bestResponseTableNode=p.bestResponseTable, lesionOutcomeTableNode=p.lesionOutcomeTable,
                progress=self._progress)
            spider, _waterfall = self.logic.createResponsePlots(p.lesionOutcomeTable, p.bestResponseTable)
            slicer.modules.plots.logic().ShowChartInLayout(spider)
            self._showTable(p.timePointTable)

    def onExportDicomButton(self) -> None:
        import qt

        with slicer.util.tryWithErrorDisplay(_("Failed to export DICOM."), waitCursor=True):
            from LuPRRTExtension import ensurePythonRequirements

            ensurePythonRequirements()  # highdicom and pynetdicom, if this Slicer lacks them
            folder = qt.QFileDialog.getExistingDirectory(None, _("Folder for the DICOM objects"))
            p = self._parameterNode
            timePoints = ((p.baselineSegmentation, p.baselineCtVolume, p.baselineDate),
                          (p.trackedSegmentation or p.followupSegmentation, p.followupCtVolume, p.followupDate))
            for segmentation, ct, when in timePoints if folder else ():
                if segmentation and ct:
                    self.logic.exportDicom(folder, segmentation, mrml.dicom_files_of_volume_node(ct),
                                           p.measurementsTable, when)

    @staticmethod
    def _showTable(tableNode) -> None:
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()


#
# ResponseAssessLogic
#
class ResponseAssessLogic(ScriptedLoadableModuleLogic):
    """Lesion diameters, lesion tracking and RECIST 1.1 on MRML nodes (callable without the panel).

    Arguments are nodes and plain values; results are new (or the given output) nodes; input
    nodes are never modified. Lesions are segments tagged ``LuPRRT.Role = lesion`` and found by
    their ``LuPRRT.LesionId`` tracking id, never by name or order.
    """

    def getParameterNode(self) -> ResponseAssessParameterNode:
        return ResponseAssessParameterNode(super().getParameterNode())

    def exportDicom(self, folder, segmentationNode, ctDicomFiles, measurementsTableNode, imagingDate,
                    overwrite: bool = False) -> list:
        """Write ``<date>/seg.dcm`` and ``<date>/sr.dcm``: the time point's lesions, diameters and RECIST roles.

        :param segmentationNode: the time point's (tracked) segmentation, on the CT grid.
        :param ctDicomFiles: the CT's DICOM files (the SEG references them and their frame of reference).
        :param measurementsTableNode: the RECIST measurement table (rows of every date).
        :param imagingDate: the time point's date (YYYY-MM-DD), selecting its rows.
        :returns: the files written; nothing is replaced unless ``overwrite``.
        """
        from pathlib import Path

        from luprrt.workflows.export_dicom import export_visit_dicom

        if segmentationNode is None or measurementsTableNode is None:
            raise ValueError("a segmentation and the RECIST measurement table are needed for the DICOM export")
        day = self._isoDate(imagingDate).isoformat()
        rows = [dict(row, visit=day) for row in mrml.rows_from_table_node(measurementsTableNode)
                if str(row["date"]) == day]
        if not rows:
            raise ValueError(f"the measurement table has no rows of {day}")
        files = export_visit_dicom(mrml.segmentation_from_segmentation_node(segmentationNode), list(ctDicomFiles),
                                   Path(folder) / day, visit=day, tables={"measurements": rows}, overwrite=overwrite)
        logging.info("ResponseAssess: exported the %s time point to %s", day, folder)
        return list(files.values())

    # -- tracking ids -----------------------------------------------------------------------------
    def assignLesionIds(self, segmentationNode, prefix: str = "L") -> dict[str, str]:
        """Tag every lesion segment without a tracking id with the next free id (this edits the node).

        A lesion is a segment tagged ``LuPRRT.Role = lesion`` or with the terminology type Lesion.
        New ids continue after the largest numbered id present (``L3`` after ``L2``), in segment
        order (``luprrt.segments.new_lesion_ids``: the same rule as everywhere in LuPRRT); segments
        that have an id keep it.

        :param segmentationNode: segmentation to tag (its segments are modified)
        :param prefix: prefix of new ids when no numbered id exists yet (then ``L01``, ``L02``, ...)
        :return: ``{segment id: new tracking id}``
        """
        from luprrt.segments import new_lesion_ids

        segmentation = self._lesionSegmentation(segmentationNode, requireIds=False)
        lesions = segmentation.find(role="lesion")
        freshIds = new_lesion_ids([seg.tags.lesion_id for seg in lesions], prefix=prefix)
        assigned = {}
        for seg in lesions:
            if seg.tags.lesion_id:
                continue
            lesionId = next(freshIds)
            segment = segmentationNode.GetSegmentation().GetSegment(seg.segment_id)
            segment.SetTag("LuPRRT.Role", "lesion")
            segment.SetTag("LuPRRT.LesionId", lesionId)
            assigned[seg.segment_id] = lesionId
        segmentationNode.Modified()
        logging.info("ResponseAssess: assigned tracking ids %s in %r", assigned, segmentationNode.GetName())
        return assigned

    # -- diameters ---------------------------------------------------------------------------------
    def measureLesionDiameters(self, segmentationNode, referenceVolumeNode=None,
                               manualLineNodes: Mapping[str, object] | None = None, tableNode=None,
                               nodeLesionIds: Iterable[str] = (), progress: ProgressCallback | None = None):
        """Longest axial diameter and short axis of every lesion segment (RECIST 1.1, section 4.2).

        :param segmentationNode: segmentation whose lesion segments carry ``LuPRRT.LesionId`` tags
        :param referenceVolumeNode: optional volume (e.g. the CT) whose axial grid the lesions are
            measured on; default the segmentation's own grid
        :param manualLineNodes: ``{lesion id: markups line node}`` drawn by the reader; a line wins
            over the segment (source "manual" in the table; its length is the diameter, mm)
        :param tableNode: output table to fill (default: a new table)
        :param nodeLesionIds: lesion ids that are lymph nodes (measured in the slice of their
            longest short axis)
        :param progress: callable(fraction, message)
        :return: table node, one row per lesion: ``lesion_id, segment_id, segment_name,
            longest_diameter_mm, short_axis_mm`` (NaN for a manual line), ``slice_index`` (-1 for
            a manual line), ``source, long_axis_line_node_id``. Each computed long axis is shown
            as a markups line (reused by later runs).
        """
        from ResponseAssessLib import lines, rows

        from luprrt.response.diameters import segment_diameters

        progress = progress or no_progress
        manualLineNodes = dict(manualLineNodes or {})
        name = segmentationNode.GetName() if segmentationNode is not None else None
        progress(0.0, _("Reading lesion segments"))
        segmentation = self._lesionSegmentation(segmentationNode, referenceVolumeNode=referenceVolumeNode)
        known = {seg.tags.lesion_id for seg in segmentation.find(role="lesion")}
        unknown = sorted(set(manualLineNodes) - known)
        if unknown:
            raise ValueError(f"manual lines are given for lesion ids {unknown}, which segmentation "
                             f"{name!r} does not have (it has {sorted(known)})")
        manual = {lesionId: tuple(lines.line_endpoints_lps(line))
                  for lesionId, line in manualLineNodes.items()}
        progress(0.3, _("Measuring diameters"))
        try:
            diameters = segment_diameters(segmentation, manual_lines=manual,
                                          node_lesion_ids=set(nodeLesionIds))
        except ValueError as error:
            raise ValueError(f"segmentation {name!r}: {error}") from None

        progress(0.8, _("Showing long axes"))
        computedLines = lines.long_axis_lines(segmentationNode)
        lineIds = {}
        for lesionId, found in diameters.items():
            if lesionId in manualLineNodes:
                line = manualLineNodes[lesionId]
                previous = computedLines.get(lesionId)
                if previous is not None and previous is not line:
                    segmentationNode.GetScene().RemoveNode(previous)  # the reader's line replaces ours
                lines.mark_manual(line, segmentationNode, lesionId)
            else:
                line = lines.show_long_axis(segmentationNode, lesionId, found.long_axis_endpoints_lps_mm,
                                            f"{name} {lesionId} long axis")
            lineIds[lesionId] = line.GetID()
        table = mrml.table_node_output(rows.diameter_rows(segmentation, diameters, lineIds), f"{name} diameters",
                                       tableNode, columns=rows.DIAMETER_COLUMNS, units=rows.UNITS)
        table.SetAttribute("LuPRRT.SegmentationNodeID", segmentationNode.GetID())
        progress(1.0, _("Diameters measured"))
        logging.info("ResponseAssess: measured %d lesions of %r (%d manual)", len(diameters), name,
                     len(manual))
        return table

    def userEditedLines(self, segmentationNode) -> dict[str, object]:
        """Long-axis lines of ``segmentationNode`` the reader moved (or tagged manual), by lesion id.

        Pass them as ``manualLineNodes`` to :meth:`measureLesionDiameters` so the reader's lines win.
        """
        from ResponseAssessLib import lines

        return lines.user_edited_lines(segmentationNode) if segmentationNode is not None else {}

    # -- tracking ----------------------------------------------------------------------------------
    def matchLesions(self, referenceSegmentationNode, followupSegmentationNode, referenceCtNode=None,
                     followupCtNode=None, register: bool = True, maxDistanceMm: float = 20.0,
                     overrides: Mapping[str, str | None] | None = None, outputSegmentationNode=None,
                     eventsTableNode=None, progress: ProgressCallback | None = None):
        """Give the follow-up lesions the tracking ids of the reference lesions they are.

        :param referenceSegmentationNode: earlier time point; its lesion segments carry tracking ids
        :param followupSegmentationNode: later time point; its lesions are named by segment id
            (its own ``LuPRRT.LesionId`` tags, if any, are replaced in the output)
        :param referenceCtNode: CT of the reference time point (HU)
        :param followupCtNode: CT of the follow-up time point (HU); with ``register`` it is
            registered rigidly to the reference CT (Mattes mutual information) and lesions are
            matched in the registered frame
        :param register: register the CTs (needs both)
        :param maxDistanceMm: largest centroid distance of a matched pair without overlap, mm
        :param overrides: ``{follow-up segment id: reference lesion id}`` imposed by the reader;
            None as the value forces a new lesion
        :param outputSegmentationNode: segmentation to fill with the tracked follow-up (default new)
        :param eventsTableNode: table to fill with the events (default new)
        :param progress: callable(fraction, message)
        :return: (tracked segmentation node, events table node). The events table has one row per
            event: ``event`` (matched, new, disappeared, split, merged), ``reference_lesion_ids``,
            ``followup_segment_ids``, ``tracking_ids`` (";"-separated), ``dice``,
            ``centroid_distance_mm``, ``matched_by``. With registration it references the new
            follow-up-to-reference transform node (role ``registrationTransform``).
        """
        from ResponseAssessLib import nodes, rows

        from luprrt.response.matching import EVENT_KINDS, apply_tracking_ids, match_lesions

        progress = progress or no_progress
        if maxDistanceMm <= 0:
            raise ValueError(f"maximum match distance must be > 0 mm; got {maxDistanceMm}")
        inputs = (referenceSegmentationNode, followupSegmentationNode)
        if outputSegmentationNode is not None and outputSegmentationNode in inputs:
            raise ValueError(f"output segmentation {outputSegmentationNode.GetName()!r} is an input; "
                             "choose a new node (inputs are never modified)")
        if register and (referenceCtNode is None) != (followupCtNode is None):
            given = (referenceCtNode or followupCtNode).GetName()
            raise ValueError(f"registration needs the CT of both time points; only {given!r} is given "
                             "(give both, or none, or register=False)")
        progress(0.0, _("Reading lesion segments"))
        reference = self._lesionSegmentation(referenceSegmentationNode)
        followup = self._lesionSegmentation(followupSegmentationNode, requireIds=False)
        referenceName, followupName = referenceSegmentationNode.GetName(), followupSegmentationNode.GetName()
        transform, registration = None, None
        if register and referenceCtNode is not None:
            for ctNode in (referenceCtNode, followupCtNode):
                nodes.require_no_transform(ctNode)
            fixed = mrml.image_from_volume_node(referenceCtNode)
            moving = mrml.image_from_volume_node(followupCtNode)
            nodes.require_covered(reference, fixed, referenceSegmentationNode, referenceCtNode)
            nodes.require_covered(followup, moving, followupSegmentationNode, followupCtNode)
            transform, registration = self._registerCts(fixed, moving, referenceCtNode, followupCtNode,
                                                        lambda f, m: progress(0.05 + 0.75 * f, m))
        progress(0.8, _("Matching lesions"))
        try:
            result = match_lesions(reference, followup, transform, max_distance_mm=maxDistanceMm,
                                   overrides=overrides)
        except ValueError as error:
            raise ValueError(f"matching {followupName!r} to {referenceName!r}: {error}") from None
        name = f"{followupName} tracked"
        fresh = mrml.segmentation_node_from_segmentation(apply_tracking_ids(followup, result), name,
                                                         scene=followupSegmentationNode.GetScene())
        output = nodes.replace_segmentation(fresh, outputSegmentationNode)
        events = mrml.table_node_output(rows.event_rows(result), f"{name} events", eventsTableNode,
                                        columns=rows.EVENT_COLUMNS, units=rows.UNITS)
        events.SetAttribute("LuPRRT.ReferenceSegmentationNodeID", referenceSegmentationNode.GetID())
        events.SetAttribute("LuPRRT.FollowupSegmentationNodeID", followupSegmentationNode.GetID())
        events.SetNodeReferenceID(REGISTRATION_REFERENCE_ROLE, registration.GetID() if registration else None)
        progress(1.0, _("Lesions tracked"))
        logging.info("ResponseAssess: tracked %r to %r (registered: %s): %s", followupName, referenceName,
                     registration is not None, {kind: len(result.of_kind(kind)) for kind in EVENT_KINDS})
        return output, events

    @staticmethod
    def _registerCts(fixed, moving, referenceCtNode, followupCtNode, progress: ProgressCallback):
        """Rigid registration of the follow-up CT to the reference CT: (sitk transform, transform node)."""
        from ResponseAssessLib import nodes

        from luprrt.registration import register_rigid

        result = register_rigid(fixed, moving, progress=progress)
        transformNode = nodes.transform_node(result.transform,
                                             f"{followupCtNode.GetName()} to {referenceCtNode.GetName()}",
                                             referenceCtNode.GetScene())
        for key, value in (("MattesMutualInformation", result.metric_mattes_mi),
                           ("BodyDiceBefore", result.body_dice_before),
                           ("BodyDiceAfter", result.body_dice_after)):
            transformNode.SetAttribute(f"LuPRRT.Registration.{key}", f"{value:.6g}")
        return result.transform, transformNode

    # -- RECIST ------------------------------------------------------------------------------------
    def recistMeasurementRows(self, patientId: str, diameterTableNodesByDate: Mapping, organ: str = "liver",
                              targetLesionIds: Iterable[str] | None = None,
                              sliceThicknessMm: float = 5.0) -> list[dict]:
        """The tidy RECIST measurement rows of one patient from diameter tables of tracked segmentations.

        :param patientId: patient identifier
        :param diameterTableNodesByDate: ``{imaging date (date or YYYY-MM-DD): diameters table node}``
            (from :meth:`measureLesionDiameters` of segmentations sharing tracking ids); the
            earliest date is the baseline
        :param organ: organ of the lesions (LuPRRT: liver metastases)
        :param targetLesionIds: the reader's target lesions; default: RECIST 1.1 selection, largest
            measurable lesions first, at most 2 per organ and 5 in total
        :param sliceThicknessMm: CT slice thickness, mm (measurable: >= 10 mm and >= twice it)
        :return: rows ``patient_id, lesion_id, organ, is_lymph_node, date, lesion_type,
            longest_diameter_mm, short_axis_mm, non_target_status, too_small_to_measure``. A
            baseline lesion missing from a later segmentation counts as gone (0 mm); a lesion
            absent at baseline is new.
        """
        from ResponseAssessLib import rows

        from luprrt.response.recist import RecistCriteria

        if not str(patientId).strip():
            raise ValueError("patient ID is empty")
        byDate = {}
        for when, tableNode in diameterTableNodesByDate.items():
            if tableNode is None:
                raise ValueError(f"no diameter table for the imaging date {when}")
            day = self._isoDate(when)
            if day in byDate:
                raise ValueError(f"two diameter tables for the imaging date {day}")
            tableRows = mrml.rows_from_table_node(tableNode)
            if tableRows and not {"lesion_id", "longest_diameter_mm"} <= set(tableRows[0]):
                raise ValueError(f"table {tableNode.GetName()!r} is not a diameter table: it lacks lesion_id "
                                 f"or longest_diameter_mm (columns: {list(tableRows[0])})")
            byDate[day] = tableRows
        return rows.measurement_rows(str(patientId).strip(), byDate, organ=organ,
                                     target_lesion_ids=targetLesionIds,
                                     criteria=RecistCriteria(slice_thickness_mm=sliceThicknessMm))

    def createMeasurementsTable(self, patientId: str, diameterTableNodesByDate: Mapping, organ: str = "liver",
                                targetLesionIds: Iterable[str] | None = None, sliceThicknessMm: float = 5.0,
                                tableNode=None):
        """:meth:`recistMeasurementRows` as a table node the reader can review and edit before assessing."""
        from ResponseAssessLib import rows as rowsLib

        rows = self.recistMeasurementRows(patientId, diameterTableNodesByDate, organ, targetLesionIds,
                                          sliceThicknessMm)
        table = mrml.table_node_output(rows, f"{patientId} RECIST measurements", tableNode, units=rowsLib.UNITS)
        table.SetAttribute(BUILT_FROM_DIAMETERS_ATTRIBUTE, "1")
        logging.info("ResponseAssess: RECIST measurement table of %r, %d rows", patientId, len(rows))
        return table

    def assessRecist(self, measurements, *, responseDecreasePct: float = 30.0,
                     progressionIncreasePct: float = 20.0, progressionMinIncreaseMm: float = 5.0,
                     tooSmallToMeasureMm: float = 5.0, sliceThicknessMm: float = 5.0,
                     requireConfirmation: bool = True, confirmationDays: int = 28,
                     minStableDiseaseDays: int = 42,
                     timePointTableNode=None, bestResponseTableNode=None, lesionOutcomeTableNode=None,
                     progress: ProgressCallback | None = None):
        """RECIST 1.1 time-point and best overall response per patient, and per-lesion outcome.

        :param measurements: tidy measurement table (table node, or rows as dicts or
            ``LesionMeasurement``): ``patient_id, lesion_id, organ, is_lymph_node, date
            (YYYY-MM-DD), lesion_type`` (target, non_target, new) and optionally
            ``longest_diameter_mm, short_axis_mm, non_target_status, too_small_to_measure``; each
            patient's earliest date is the baseline
        :param responseDecreasePct: decrease of the sum of diameters from baseline for PR, %
        :param progressionIncreasePct: increase of the sum over the nadir for PD, %
        :param progressionMinIncreaseMm: absolute increase over the nadir also needed for PD, mm
        :param tooSmallToMeasureMm: diameter of a lesion too small to measure, mm
        :param sliceThicknessMm: CT slice thickness, mm
        :param requireConfirmation: CR/PR need a confirming assessment
        :param confirmationDays: minimum interval of the confirmation, days
        :param minStableDiseaseDays: minimum time from baseline for SD, days
        :param timePointTableNode: table to fill (default new), likewise ``bestResponseTableNode``
            and ``lesionOutcomeTableNode``
        :param progress: callable(fraction, message)
        :return: (time-point table, best-response table, lesion-outcome table). The per-lesion
            outcome (% change of the longest diameter, category by the same PR/PD limits) covers
            lesions with a positive baseline longest diameter.
        """
        from ResponseAssessLib import rows

        from luprrt.response.outcome import LesionOutcome, OutcomeThresholds, lesion_outcomes
        from luprrt.response.recist import (
            BestOverallResponse,
            RecistCriteria,
            TimePointResponse,
            assess_cohort,
            best_overall_responses,
        )
        from luprrt.tables import as_rows

        progress = progress or no_progress
        progress(0.0, _("Reading measurements"))
        records = self._measurements(measurements)
        criteria = RecistCriteria(
            slice_thickness_mm=sliceThicknessMm, pr_decrease_pct=responseDecreasePct,
            pd_increase_pct=progressionIncreasePct, pd_min_increase_mm=progressionMinIncreaseMm,
            too_small_to_measure_mm=tooSmallToMeasureMm, require_confirmation=requireConfirmation,
            confirmation_interval_days=int(confirmationDays), min_sd_duration_days=int(minStableDiseaseDays))
        thresholds = OutcomeThresholds(response_pct=-responseDecreasePct,
                                       progression_pct=progressionIncreasePct)
        progress(0.2, _("Assessing time points"))
        byPatient = assess_cohort(records, criteria)
        timePoints = [tp for responses in byPatient.values() for tp in responses]
        # A patient with a baseline only is not evaluable (NE), RECIST 1.1 section 4.4.
        best = best_overall_responses(byPatient, criteria)
        outcomes = lesion_outcomes(records, thresholds=thresholds, too_small_to_measure_mm=tooSmallToMeasureMm,
                                   assessment_window_days=criteria.assessment_window_days)
        progress(0.8, _("Writing tables"))
        tables = (
            mrml.table_node_output(as_rows(timePoints), "RECIST time points", timePointTableNode,
                                   columns=self._fieldNames(TimePointResponse), units=rows.UNITS),
            mrml.table_node_output(rows.best_response_rows(best), "RECIST best response",
                                   bestResponseTableNode, columns=self._fieldNames(BestOverallResponse),
                                   units=rows.UNITS),
            mrml.table_node_output(as_rows(outcomes), "Lesion outcome", lesionOutcomeTableNode,
                                   columns=self._fieldNames(LesionOutcome), units=rows.UNITS),
        )
        progress(1.0, _("Response assessed"))
        logging.info("ResponseAssess: RECIST 1.1 for %d patients, %d time points; best response %s",
                     len(byPatient), len(timePoints), {b.patient_id: b.response.value for b in best})
        return tables

    def createResponsePlots(self, lesionOutcomeTableNode, bestResponseTableNode):
        """Spider chart (per-lesion % change of the longest diameter over days) and waterfall chart
        (best % change of the sum of diameters per patient, sorted) as plot chart nodes.

        :return: (spider chart node, waterfall chart node); their data tables are new table nodes
        """
        from ResponseAssessLib import rows


        spiderRows = rows.spider_rows(mrml.rows_from_table_node(lesionOutcomeTableNode))
        waterfallRows = rows.waterfall_rows(mrml.rows_from_table_node(bestResponseTableNode))
        if not spiderRows:
            raise ValueError(f"table {lesionOutcomeTableNode.GetName()!r} has no assessed lesion change "
                             "to plot")
        if not waterfallRows:
            raise ValueError(f"table {bestResponseTableNode.GetName()!r} has no patient with a complete "
                             "change of the sum of diameters to plot")
        spiderTable = mrml.table_node_from_rows(spiderRows, "Spider plot data", units=rows.UNITS)
        spider = mrml.plot_chart(spiderTable, "days_from_baseline", ["change_pct"], "Lesion change (spider)",
                                 group_column="lesion", plot_type="line",
                                 y_title=_("change of longest diameter [%]"))
        waterfallTable = mrml.table_node_from_rows(waterfallRows, "Waterfall plot data", units=rows.UNITS)
        waterfall = mrml.plot_chart(waterfallTable, "rank", ["best_change_from_baseline_pct"],
                                    "Best response (waterfall)", plot_type="bar", x_title=_("patient"),
                                    y_title=_("best change of the sum of diameters [%]"))
        waterfall.GetNthPlotSeriesNode(0).SetLabelColumnName("patient_id")
        logging.info("ResponseAssess: spider chart of %d lesions, waterfall of %d patients",
                     spider.GetNumberOfPlotSeriesNodes(), len(waterfallRows))
        return spider, waterfall

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _lesionSegmentation(segmentationNode, requireIds: bool = True, referenceVolumeNode=None):
        """The LuPRRT segmentation of a node, checked: lesion segments present, tracking ids unique."""
        from ResponseAssessLib import nodes


        if segmentationNode is None or not segmentationNode.IsA("vtkMRMLSegmentationNode"):
            raise ValueError(f"expected a segmentation node, got "
                             f"{segmentationNode.GetClassName() if segmentationNode else None}")
        nodes.require_no_transform(segmentationNode)
        name = segmentationNode.GetName()
        segmentation = mrml.segmentation_from_segmentation_node(segmentationNode)
        lesions = segmentation.find(role="lesion")
        if not lesions:
            raise ValueError(f"segmentation {name!r} has no lesion segments (segments tagged "
                             "LuPRRT.Role = lesion or with the terminology type Lesion); its segments are "
                             f"{[seg.name for seg in segmentation.segments]}")
        if requireIds:
            untagged = [seg.segment_id for seg in lesions if not seg.tags.lesion_id]
            if untagged:
                raise ValueError(f"segmentation {name!r}: lesion segments {untagged} have no LuPRRT.LesionId "
                                 "tag; give every lesion a tracking id (e.g. L1) or track it to a baseline "
                                 "first")
            ids = [seg.tags.lesion_id for seg in lesions]
            repeated = sorted({i for i in ids if ids.count(i) > 1})
            if repeated:
                raise ValueError(f"segmentation {name!r}: lesion ids {repeated} are used by more than one "
                                 "segment")
        if referenceVolumeNode is not None:
            segmentation = nodes.lesions_on_volume_grid(segmentationNode, lesions, referenceVolumeNode)
        return segmentation

    @staticmethod
    def _measurements(measurements) -> list:
        """RECIST measurements from a table node or from rows (dicts or ``LesionMeasurement``)."""
        from ResponseAssessLib import rows


        if measurements is None:
            raise ValueError("no measurement table given")
        if not hasattr(measurements, "IsA"):
            return rows.measurements_from_rows(measurements)
        if not measurements.IsA("vtkMRMLTableNode"):
            raise ValueError(f"expected a table node of measurements, got {measurements.GetClassName()}")
        try:
            return rows.measurements_from_rows(mrml.rows_from_table_node(measurements))
        except ValueError as error:
            raise ValueError(f"table {measurements.GetName()!r}: {error}") from None

    @staticmethod
    def _fieldNames(dataclass) -> list[str]:
        import dataclasses

        return [field.name for field in dataclasses.fields(dataclass)]

    @staticmethod
    def _isoDate(value) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"imaging date {value!r} is not an ISO date (YYYY-MM-DD)") from None


#
# ResponseAssessTest
#
class ResponseAssessTest(ScriptedLoadableModuleTest):
    """Self-test on analytic phantoms: exact diameters, tracking of a known shift, RECIST by hand."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        for name in sorted(n for n in dir(self) if n.startswith("test_")):
            self.setUp()
            getattr(self, name)()

    # -- building blocks (no "test" in their names: the runner would call them) --------------------
    @staticmethod
    def _lesionNode(reference, lesions, name, withLiver=False):
        """A segmentation node with one lesion segment per (segment id, lesion id, mask)."""
        from luprrt.segments import Segmentation, SegmentTags

        segmentation = Segmentation.empty_like(reference)
        if withLiver:
            everywhere = np.ones(reference.GetSize()[::-1], dtype=bool)
            segmentation.add_segment(everywhere, SegmentTags("liver"), segment_id="liver")
        for segmentId, lesionId, mask in lesions:
            segmentation.add_segment(mask, SegmentTags("lesion", lesion_id=lesionId), segment_id=segmentId)
        return mrml.segmentation_node_from_segmentation(segmentation, name)

    @staticmethod
    def _rows(tableNode) -> list[dict]:

        return mrml.rows_from_table_node(tableNode)

    def _rowsBy(self, tableNode, key="lesion_id") -> dict:
        return {row[key]: row for row in self._rows(tableNode)}

    @staticmethod
    def _columns(tableNode) -> list[str]:
        return [tableNode.GetColumnName(i) for i in range(tableNode.GetNumberOfColumns())]

    @staticmethod
    def _endpointsRas(lineNode) -> np.ndarray:
        points = np.zeros((2, 3))
        for index in range(2):
            position = [0.0] * 3
            lineNode.GetNthControlPointPositionWorld(index, position)
            points[index] = position
        return points

    @staticmethod
    def _tags(segmentationNode) -> dict[str, str]:
        """Segment id -> LuPRRT.LesionId tag of a segmentation node ("" when untagged)."""
        segmentation = segmentationNode.GetSegmentation()
        tags = {}
        for segmentId in segmentation.GetSegmentIDs():
            value = vtk.reference("")
            segmentation.GetSegment(segmentId).GetTag("LuPRRT.LesionId", value)
            tags[segmentId] = str(value)
        return tags

    @staticmethod
    def _lineCount() -> int:
        return len(slicer.util.getNodesByClass("vtkMRMLMarkupsLineNode"))

    def _diameterCase(self):
        """Box L1 (20 x 10 voxels, 4 slices) and ellipsoid L2 (12, 6, 5 mm) on a 0.8 x 1.2 x 2.5 mm grid."""
        from ResponseAssessLib import synthetic

        reference = synthetic.grid((64, 40, 12), (0.8, 1.2, 2.5), (-10.0, 20.0, -30.0))
        self.ellipsoidCentreLps = synthetic.voxel_centre_lps(reference, (45, 25, 6))
        ellipsoid = synthetic.ellipsoid_mask(reference, self.ellipsoidCentreLps, (12.0, 6.0, 5.0))
        box = synthetic.box_mask(reference, (5, 4, 3), (20, 10, 4))
        return reference, self._lesionNode(reference, [("box", "L1", box), ("ellipsoid", "L2", ellipsoid)],
                                           "baseline lesions")

    # -- parameters --------------------------------------------------------------------------------
    def test_panel_defaults_are_the_recist_1_1_values(self):
        from luprrt.response.recist import RecistCriteria

        parameters = ResponseAssessLogic().getParameterNode()
        paper = RecistCriteria()
        self.assertEqual((parameters.responseDecreasePct, parameters.progressionIncreasePct,
                          parameters.progressionMinIncreaseMm, parameters.tooSmallToMeasureMm,
                          parameters.sliceThicknessMm, parameters.requireConfirmation,
                          parameters.confirmationDays, parameters.minStableDiseaseDays),
                         (paper.pr_decrease_pct, paper.pd_increase_pct, paper.pd_min_increase_mm,
                          paper.too_small_to_measure_mm, paper.slice_thickness_mm, paper.require_confirmation,
                          paper.confirmation_interval_days, paper.min_sd_duration_days))
        self.assertEqual(parameters.maxMatchDistanceMm, 20.0)
        self.assertIsNone(parameters.baselineSegmentation)

    # -- diameters ---------------------------------------------------------------------------------
    def test_diameters_of_analytic_lesions(self):
        """Box 16 x 12 mm: exact cell diagonal 20 mm, short axis 12 * 20 / 16 = 15 mm.

        Ellipsoid (12, 6, 5) mm: its widest row reaches the +-12 mm voxel centres, so the long
        axis joins opposite corners of that row's end cells, hypot(24 + 0.8, 1.2) = 24.829 mm,
        tilted by atan(1.2 / 24.8); the perpendicular chord through the centre crosses the top and
        bottom cells of the +-6 mm column: 13.2 mm / cos(tilt).
        """
        from ResponseAssessLib import synthetic


        reference, node = self._diameterCase()
        table = ResponseAssessLogic().measureLesionDiameters(node)

        self.assertEqual(self._columns(table), ["lesion_id", "segment_id", "segment_name",
                                                "longest_diameter_mm", "short_axis_mm", "slice_index",
                                                "source", "long_axis_line_node_id"])
        self.assertEqual(table.GetColumnUnitLabel("longest_diameter_mm"), "mm")
        rows = self._rowsBy(table)
        self.assertEqual(list(rows), ["L1", "L2"])
        box, ellipsoid = rows["L1"], rows["L2"]
        self.assertAlmostEqual(box["longest_diameter_mm"], 20.0, delta=1e-9)
        self.assertAlmostEqual(box["longest_diameter_mm"], synthetic.box_diagonal_mm(reference, (20, 10)),
                               delta=1e-9)
        self.assertAlmostEqual(box["short_axis_mm"], 15.0, delta=1e-9)
        self.assertIn(box["slice_index"], range(3, 7))
        longAxis = math.hypot(24.8, 1.2)
        self.assertAlmostEqual(ellipsoid["longest_diameter_mm"], longAxis, delta=1e-6)
        self.assertAlmostEqual(ellipsoid["short_axis_mm"], 13.2 * longAxis / 24.8, delta=1e-6)
        self.assertEqual(ellipsoid["slice_index"], 6)
        self.assertEqual({row["source"] for row in rows.values()}, {"segment"})

        # One line per lesion, as long as the table says; the ellipsoid's is centred on it.
        for lesionId, row in rows.items():
            line = slicer.mrmlScene.GetNodeByID(row["long_axis_line_node_id"])
            self.assertEqual(line.GetAttribute("LuPRRT.LesionId"), lesionId)
            ends = self._endpointsRas(line)
            self.assertAlmostEqual(float(np.linalg.norm(ends[1] - ends[0])), row["longest_diameter_mm"],
                                   delta=1e-6)
        ends = self._endpointsRas(slicer.mrmlScene.GetNodeByID(ellipsoid["long_axis_line_node_id"]))
        np.testing.assert_allclose(ends.mean(axis=0), self.ellipsoidCentreLps * LPS_TO_RAS, atol=1e-6)
        self.assertEqual(self._tags(node), {"box": "L1", "ellipsoid": "L2"})

        # Measured on a volume's grid (the same grid here) the numbers stay; the lines are reused.
        ct = mrml.volume_node_from_image(sitk.Cast(reference, sitk.sitkInt16), "ct", units="HU")
        onCt = self._rowsBy(ResponseAssessLogic().measureLesionDiameters(node, referenceVolumeNode=ct))
        self.assertAlmostEqual(onCt["L1"]["longest_diameter_mm"], 20.0, delta=1e-9)
        self.assertAlmostEqual(onCt["L2"]["longest_diameter_mm"], longAxis, delta=1e-6)
        self.assertEqual(self._lineCount(), 2)

    def test_manual_line_wins_over_the_segment(self):
        """A reader's 30 mm line for L2 replaces the segment value; a moved line becomes manual."""

        _reference, node = self._diameterCase()
        logic = ResponseAssessLogic()
        centre = self.ellipsoidCentreLps
        along = np.array([0.0, 15.0, 0.0])
        drawn = mrml.markups_line(centre - along, centre + along, "reader L2")
        rows = self._rowsBy(logic.measureLesionDiameters(node, manualLineNodes={"L2": drawn}))
        self.assertEqual((rows["L2"]["source"], rows["L1"]["source"]), ("manual", "segment"))
        self.assertAlmostEqual(rows["L2"]["longest_diameter_mm"], 30.0, delta=1e-9)
        self.assertTrue(math.isnan(rows["L2"]["short_axis_mm"]))
        self.assertEqual(rows["L2"]["long_axis_line_node_id"], drawn.GetID())
        self.assertAlmostEqual(rows["L1"]["longest_diameter_mm"], 20.0, delta=1e-9)
        self.assertEqual(self._lineCount(), 2)

        # The reader drags the end of L1's computed line to 18 mm from its start (axial plane).
        l1Line = slicer.mrmlScene.GetNodeByID(rows["L1"]["long_axis_line_node_id"])
        start = self._endpointsRas(l1Line)[0]
        l1Line.SetNthControlPointPositionWorld(1, start[0] + 18.0, start[1], start[2])
        edited = logic.userEditedLines(node)
        self.assertEqual(sorted(edited), ["L1", "L2"])
        rows = self._rowsBy(logic.measureLesionDiameters(node, manualLineNodes=edited))
        self.assertEqual((rows["L1"]["source"], rows["L2"]["source"]), ("manual", "manual"))
        self.assertAlmostEqual(rows["L1"]["longest_diameter_mm"], 18.0, delta=1e-9)
        self.assertEqual(self._lineCount(), 2)

        oblique = mrml.markups_line(centre, centre + np.array([10.0, 0.0, 5.0]), "oblique")
        with self.assertRaisesRegex(ValueError, "manual long axis is not axial"):
            logic.measureLesionDiameters(node, manualLineNodes={"L1": oblique})
        with self.assertRaisesRegex(ValueError, r"lesion ids \['L9'\]"):
            logic.measureLesionDiameters(node, manualLineNodes={"L9": drawn})

    def test_assigned_ids_continue_after_the_largest(self):
        from ResponseAssessLib import synthetic

        reference = synthetic.grid((30, 20, 4), (1.0, 1.0, 2.0))
        boxes = [synthetic.box_mask(reference, (4 + 8 * k, 4, 1), (5, 5, 2)) for k in range(3)]
        node = self._lesionNode(reference, [("first", None, boxes[0]), ("tagged", "L2", boxes[1]),
                                            ("third", None, boxes[2])], "partly tagged")
        self.assertEqual(ResponseAssessLogic().assignLesionIds(node), {"first": "L3", "third": "L4"})
        self.assertEqual(self._tags(node), {"first": "L3", "tagged": "L2", "third": "L4"})
        table = ResponseAssessLogic().measureLesionDiameters(node)
        self.assertEqual([row["lesion_id"] for row in self._rows(table)], ["L2", "L3", "L4"])
        self.assertEqual(ResponseAssessLogic().assignLesionIds(node), {})

    # -- tracking ----------------------------------------------------------------------------------
    def _trackingCase(self, shiftVoxels=(3, -2, 1)):
        """Balls L1, L2 (6 mm) at baseline; at follow-up both moved by ``shiftVoxels``, plus a new ball.

        The follow-up lists the new lesion first and carries misleading lesion ids of its own.
        """
        from ResponseAssessLib import synthetic

        reference = synthetic.grid((40, 40, 16), (2.0, 2.0, 3.0), (-40.0, -40.0, -24.0))
        shift = np.asarray(shiftVoxels) * np.asarray(reference.GetSpacing())
        centres = {"L1": synthetic.voxel_centre_lps(reference, (10, 12, 8)),
                   "L2": synthetic.voxel_centre_lps(reference, (28, 26, 8))}
        newCentre = synthetic.voxel_centre_lps(reference, (32, 6, 4))
        ball = (6.0, 6.0, 6.0)

        def sphere(centre, offset=(0.0, 0.0, 0.0)):
            return synthetic.ellipsoid_mask(reference, centre, ball, offset)

        baseline = self._lesionNode(reference, [(f"b{k}", k, sphere(c)) for k, c in centres.items()],
                                    "baseline")
        followup = self._lesionNode(reference, [("A", "1", sphere(newCentre)),
                                                ("B", "2", sphere(centres["L2"], shift)),
                                                ("C", "3", sphere(centres["L1"], shift))], "follow-up")
        return baseline, followup, shift

    def test_tracking_keeps_ids_and_reports_a_new_lesion(self):
        baseline, followup, shift = self._trackingCase()
        logic = ResponseAssessLogic()
        tracked, events = logic.matchLesions(baseline, followup, register=False, maxDistanceMm=20.0)

        self.assertIsNot(tracked, followup)
        self.assertEqual(self._tags(tracked), {"A": "L3", "B": "L2", "C": "L1"})
        self.assertEqual(self._tags(followup), {"A": "1", "B": "2", "C": "3"})  # input untouched
        self.assertEqual(self._columns(events), ["event", "reference_lesion_ids", "followup_segment_ids",
                                                 "tracking_ids", "dice", "centroid_distance_mm",
                                                 "matched_by"])
        self.assertEqual(events.GetColumnUnitLabel("centroid_distance_mm"), "mm")
        rows = self._rows(events)
        self.assertEqual(sorted((r["event"], r["reference_lesion_ids"], r["followup_segment_ids"],
                                 r["tracking_ids"]) for r in rows),
                         [("matched", "L1", "C", "L1"), ("matched", "L2", "B", "L2"), ("new", "", "A", "L3")])
        for row in rows:
            if row["event"] == "matched":
                # The same ball moved by whole voxels: the centroids are exactly |shift| apart.
                self.assertAlmostEqual(row["centroid_distance_mm"], float(np.linalg.norm(shift)), delta=1e-6)
                self.assertTrue(0.0 < row["dice"] < 1.0)
                self.assertEqual(row["matched_by"], "assignment")

        # The reader swaps the two: overrides win, and the chosen output nodes are refilled.
        tracked2, events2 = logic.matchLesions(baseline, followup, register=False,
                                               overrides={"B": "L1", "C": "L2"},
                                               outputSegmentationNode=tracked, eventsTableNode=events)
        self.assertIs(tracked2, tracked)
        self.assertIs(events2, events)
        self.assertEqual(self._tags(tracked), {"A": "L3", "B": "L1", "C": "L2"})
        self.assertEqual(sorted(r["matched_by"] for r in self._rows(events)), ["", "override", "override"])
        self.assertEqual(len(slicer.util.getNodesByClass("vtkMRMLSegmentationNode")), 3)

    def test_registration_recovers_a_known_translation(self):
        """Follow-up anatomy and lesions moved by (20, -12, 10) mm: 25.4 mm > the 20 mm match radius.

        Without registration nothing matches; registered, both lesions keep their ids and the
        transform node holds the translation (RAS: x and y negated) to within 1 mm.
        """
        from ResponseAssessLib import synthetic


        reference = synthetic.grid((56, 48, 28), (4.0, 4.0, 5.0), (-110.0, -94.0, -67.5))
        shift = np.array([20.0, -12.0, 10.0])
        radius = 7.0
        lesions = {"L1": np.array([-30.0, -10.0, 10.0]), "L2": np.array([-15.0, 10.0, -5.0])}
        spheres = [(centre, radius) for centre in lesions.values()]
        cts = [mrml.volume_node_from_image(synthetic.phantom_ct(reference, offset, spheres), name, units="HU")
               for offset, name in (((0.0, 0.0, 0.0), "CT baseline"), (shift, "CT follow-up"))]

        def sphere(centre, offset=(0.0, 0.0, 0.0)):
            return synthetic.ellipsoid_mask(reference, centre, (radius,) * 3, offset)

        baseline = self._lesionNode(reference, [(k, k, sphere(c)) for k, c in lesions.items()], "baseline")
        followup = self._lesionNode(reference, [(f"fu{k}", None, sphere(c, shift))
                                                for k, c in lesions.items()], "follow-up")
        logic = ResponseAssessLogic()

        _tracked, unregistered = logic.matchLesions(baseline, followup, *cts, register=False)
        self.assertEqual(sorted(r["event"] for r in self._rows(unregistered)),
                         ["disappeared", "disappeared", "new", "new"])
        self.assertIsNone(unregistered.GetNodeReference(REGISTRATION_REFERENCE_ROLE))

        fractions = []
        tracked, events = logic.matchLesions(baseline, followup, *cts, register=True,
                                             progress=lambda fraction, message: fractions.append(fraction))
        self.assertEqual(self._tags(tracked), {"fuL1": "L1", "fuL2": "L2"})
        self.assertEqual([r["event"] for r in self._rows(events)], ["matched", "matched"])
        fromParent = vtk.vtkMatrix4x4()
        events.GetNodeReference(REGISTRATION_REFERENCE_ROLE).GetMatrixTransformFromParent(fromParent)
        matrix = slicer.util.arrayFromVTKMatrix(fromParent)
        np.testing.assert_allclose(matrix[:3, 3], shift * LPS_TO_RAS, atol=1.0)
        np.testing.assert_allclose(matrix[:3, :3], np.eye(3), atol=0.02)  # about 1 deg
        self.assertEqual((fractions[0], fractions[-1]), (0.0, 1.0))
        self.assertEqual(fractions, sorted(fractions))

    # -- RECIST ------------------------------------------------------------------------------------
    @staticmethod
    def _handMadeRows():
        """Two liver targets: 40 + 60 = 100 mm, then 65 (-35 %, PR), 66 (PR, confirms), 85 mm.

        85 mm is -15 % from baseline (SD by the baseline) but +30.8 % and +20 mm over the 65 mm
        nadir: PD by the nadir rule (RECIST 1.1 section 4.3.1).
        """
        sizes = {"2024-01-10": (40.0, 60.0), "2024-03-06": (25.0, 40.0), "2024-04-17": (28.0, 38.0),
                 "2024-06-12": (45.0, 40.0)}
        return [{"patient_id": "P1", "lesion_id": lesionId, "organ": "liver", "is_lymph_node": False,
                 "date": day, "lesion_type": "target", "longest_diameter_mm": size, "short_axis_mm": None,
                 "non_target_status": None}
                for day, pair in sizes.items() for lesionId, size in zip(("L1", "L2"), pair, strict=True)]

    def test_recist_partial_response_then_progression_by_the_nadir(self):

        measurements = mrml.table_node_from_rows(self._handMadeRows(), "measurements")
        logic = ResponseAssessLogic()
        timePoints, best, outcome = logic.assessRecist(measurements)

        self.assertEqual(self._columns(timePoints),
                         ["patient_id", "date", "days_from_baseline", "sum_of_diameters_mm",
                          "all_targets_assessed", "baseline_sum_mm", "nadir_sum_mm",
                          "change_from_baseline_pct", "change_from_nadir_pct", "target_response",
                          "non_target_response", "new_lesions", "overall_response"])
        self.assertEqual(timePoints.GetColumnUnitLabel("sum_of_diameters_mm"), "mm")
        self.assertEqual(timePoints.GetColumnUnitLabel("change_from_nadir_pct"), "%")
        rows = self._rows(timePoints)
        self.assertEqual([r["overall_response"] for r in rows], ["PR", "PR", "PD"])
        self.assertEqual([r["sum_of_diameters_mm"] for r in rows], [65.0, 66.0, 85.0])
        self.assertEqual([r["nadir_sum_mm"] for r in rows], [100.0, 65.0, 65.0])
        self.assertEqual(rows[2]["change_from_baseline_pct"], -15.0)
        self.assertEqual(rows[2]["change_from_nadir_pct"], 30.77)  # 100 x 20 / 65 % written to 0.01 %

        bestRow = self._rowsBy(best, "patient_id")["P1"]
        self.assertEqual((bestRow["response"], bestRow["date"], bestRow["confirmed_on"]),
                         ("PR", "2024-03-06", "2024-04-17"))
        self.assertEqual(bestRow["best_change_from_baseline_pct"], -35.0)

        last = {r["lesion_id"]: r for r in self._rows(outcome) if r["followup_date"] == "2024-06-12"}
        self.assertEqual(outcome.GetNumberOfRows(), 6)
        self.assertEqual(last["L1"]["change_pct"], 12.5)
        self.assertEqual(last["L1"]["category"], "stable")
        self.assertEqual(last["L2"]["change_pct"], -33.33)  # -100/3 % to 0.01 %
        self.assertEqual(last["L2"]["category"], "response")

        # With a 60-day confirmation interval the 42-day-apart PRs do not confirm: SD (56 d >= 42 d).
        _timePoints, unconfirmed, _outcome = logic.assessRecist(self._handMadeRows(), confirmationDays=60)
        self.assertEqual(self._rowsBy(unconfirmed, "patient_id")["P1"]["response"], "SD")

        spider, waterfall = logic.createResponsePlots(outcome, best)
        self.assertEqual(spider.GetNumberOfPlotSeriesNodes(), 2)  # one line per lesion
        self.assertEqual(waterfall.GetNumberOfPlotSeriesNodes(), 1)
        self.assertEqual(spider.GetNthPlotSeriesNode(0).GetTableNode().GetNumberOfRows(), 4)  # 0 d + 3
        bars = self._rows(waterfall.GetNthPlotSeriesNode(0).GetTableNode())
        self.assertEqual(bars, [{"rank": 1, "patient_id": "P1", "best_change_from_baseline_pct": -35.0}])

    # -- errors ------------------------------------------------------------------------------------
    def test_bad_inputs_give_clear_errors(self):
        from ResponseAssessLib import synthetic

        from luprrt.segments import Segmentation, SegmentTags

        logic = ResponseAssessLogic()
        reference = synthetic.grid((20, 20, 6), (1.0, 1.0, 2.0))
        box = synthetic.box_mask(reference, (4, 4, 2), (6, 6, 2))
        liverOnly = Segmentation.empty_like(reference)
        liverOnly.add_segment(box, SegmentTags("liver"))
        with self.assertRaisesRegex(ValueError, r"'liver only' has no lesion segments"):
            logic.measureLesionDiameters(mrml.segmentation_node_from_segmentation(liverOnly, "liver only"))

        untagged = self._lesionNode(reference, [("lesion_a", None, box)], "untagged")
        with self.assertRaisesRegex(ValueError, r"\['lesion_a'\] have no LuPRRT.LesionId tag"):
            logic.measureLesionDiameters(untagged)

        tagged = self._lesionNode(reference, [("a", "L1", box)], "tagged")
        faraway = synthetic.grid((10, 10, 4), (1.0, 1.0, 2.0), (500.0, 500.0, 500.0))
        farCt = mrml.volume_node_from_image(faraway, "far CT")
        with self.assertRaisesRegex(ValueError, r"geometry mismatch: lesions \['L1'\] .* 'far CT'"):
            logic.measureLesionDiameters(tagged, referenceVolumeNode=farCt)
        with self.assertRaisesRegex(ValueError, "needs the CT of both time points; only 'far CT'"):
            logic.matchLesions(tagged, untagged, referenceCtNode=farCt)
        nearCt = mrml.volume_node_from_image(sitk.Cast(reference, sitk.sitkInt16), "near CT")
        with self.assertRaisesRegex(ValueError, r"\['L1'\] of segmentation 'tagged' lie outside CT 'far CT'"):
            logic.matchLesions(tagged, untagged, referenceCtNode=farCt, followupCtNode=nearCt)
        with self.assertRaisesRegex(ValueError, "is an input"):
            logic.matchLesions(tagged, untagged, register=False, outputSegmentationNode=untagged)

        baselineOnly = [r for r in self._handMadeRows() if r["date"] == "2024-01-10"]
        _, best, _ = logic.assessRecist(baselineOnly)  # no follow-up: not evaluable (RECIST 1.1 section 4.4)
        self.assertEqual([(r["patient_id"], r["response"]) for r in self._rows(best)], [("P1", "NE")])
        negative = self._handMadeRows()
        negative[0]["longest_diameter_mm"] = -4.0
        with self.assertRaisesRegex(ValueError, "row 0: .*longest_diameter_mm must be a finite value >= 0"):
            logic.assessRecist(negative)
        with self.assertRaisesRegex(ValueError, "'2024-13-01' is not an ISO date"):
            logic.recistMeasurementRows("P1", {"2024-13-01": logic.measureLesionDiameters(tagged)})
        self.assertEqual(self._tags(untagged), {"lesion_a": ""})

    # -- end to end --------------------------------------------------------------------------------
    def test_dicom_export_of_the_follow_up(self):
        """Follow-up SEG + TID 1500 report: diameters and RECIST roles read back, lesion UIDs as at baseline."""
        import importlib.util
        import tempfile
        from datetime import datetime
        from pathlib import Path

        if importlib.util.find_spec("highdicom") is None:
            self.skipTest("highdicom is not installed (in Slicer the Export DICOM button installs it; elsewhere the `dicom` extra)")
        from ResponseAssessLib import synthetic

        from luprrt.io import read_measurement_report, tracking_uid
        from luprrt.io.dicom_write import DicomPatient, new_uid, write_ct_series

        logic = ResponseAssessLogic()
        grid = synthetic.grid((40, 30, 8), (1.0, 1.2, 2.5))
        baseline = self._lesionNode(grid, [("L1", "L1", synthetic.box_mask(grid, (4, 4, 2), (20, 10, 4)))],
                                    "baseline")
        followup = self._lesionNode(grid, [("a", "L1", synthetic.box_mask(grid, (5, 5, 2), (10, 5, 4))),
                                           ("b", "L2", synthetic.box_mask(grid, (30, 20, 3), (6, 6, 3)))], "follow-up")
        measurements = logic.createMeasurementsTable("RA-DICOM", {
            "2024-02-01": logic.measureLesionDiameters(baseline), "2024-04-25": logic.measureLesionDiameters(followup)})
        expected = {r["lesion_id"]: r for r in self._rows(measurements) if r["date"] == "2024-04-25"}
        with tempfile.TemporaryDirectory() as folder:
            ct = Path(folder) / "ct"
            write_ct_series(sitk.Image(grid) * 0, ct, patient=DicomPatient("RA-DICOM"), study_uid=new_uid(),
                            frame_of_reference_uid=new_uid(), acquisition_datetime=datetime(2024, 4, 25, 9, 0))
            paths = logic.exportDicom(folder, followup, sorted(map(str, ct.iterdir())), measurements, "2024-04-25")
            self.assertEqual(sorted(p.name for p in paths), ["seg.dcm", "sr.dcm"])
            records, roles = read_measurement_report(Path(folder) / "2024-04-25" / "sr.dcm")
        diameters = {r.tracking_id: r.value for r in records if r.quantity == "longest_diameter_mm"}
        self.assertEqual(diameters, {k: r["longest_diameter_mm"] for k, r in expected.items()})
        self.assertEqual(roles, {tracking_uid("RA-DICOM", k): r["lesion_type"] for k, r in expected.items()})
        self.assertEqual(roles[tracking_uid("RA-DICOM", "L2")], "new")

    def test_end_to_end_measure_track_assess(self):
        """Baseline boxes L1 (20 x 10 voxels) and L2 (25 x 10); at follow-up they shrank to 10 x 5 and
        15 x 10 voxels and moved, and a new lesion appeared: targets PR (-37.7 %), overall PD."""
        from ResponseAssessLib import synthetic

        logic = ResponseAssessLogic()
        grid = synthetic.grid((72, 48, 10), (0.8, 1.2, 2.5))
        sizes = {"L1": ((20, 10, 4), (10, 5, 4)), "L2": ((25, 10, 4), (15, 10, 4))}
        corners = {"L1": (4, 4, 2), "L2": (36, 24, 2)}

        self.delayDisplay("1. Baseline and follow-up segmentations")
        baseline = self._lesionNode(grid, [(k, k, synthetic.box_mask(grid, corners[k], sizes[k][0]))
                                           for k in sizes], "baseline", withLiver=True)
        shrunk = [(f"fu{k}", None, synthetic.box_mask(grid, np.add(corners[k], (6, 3, 1)), sizes[k][1]))
                  for k in sizes]
        appeared = ("fuNew", None, synthetic.box_mask(grid, (60, 2, 3), (8, 6, 3)))
        followup = self._lesionNode(grid, [*shrunk, appeared], "follow-up")

        self.delayDisplay("2. Baseline diameters")
        baselineTable = logic.measureLesionDiameters(baseline)
        before = {k: synthetic.box_diagonal_mm(grid, s[0]) for k, s in sizes.items()}
        for lesionId, row in self._rowsBy(baselineTable).items():
            self.assertAlmostEqual(row["longest_diameter_mm"], before[lesionId], delta=1e-9)

        self.delayDisplay("3. Track the follow-up lesions")
        tracked, events = logic.matchLesions(baseline, followup, register=False)
        self.assertEqual(self._tags(tracked), {"fuL1": "L1", "fuL2": "L2", "fuNew": "L3"})
        self.assertEqual(sorted(r["event"] for r in self._rows(events)), ["matched", "matched", "new"])

        self.delayDisplay("4. Follow-up diameters")
        followupTable = logic.measureLesionDiameters(tracked)
        after = {k: synthetic.box_diagonal_mm(grid, s[1]) for k, s in sizes.items()}
        followupRows = self._rowsBy(followupTable)
        for lesionId, expected in {**after, "L3": math.hypot(6.4, 7.2)}.items():
            self.assertAlmostEqual(followupRows[lesionId]["longest_diameter_mm"], expected, delta=1e-9)

        self.delayDisplay("5. RECIST measurement table")
        measurements = logic.createMeasurementsTable("P7", {"2024-02-01": baselineTable,
                                                            "2024-04-25": followupTable})
        types = {(r["lesion_id"], r["date"]): r["lesion_type"] for r in self._rows(measurements)}
        self.assertEqual(types, {("L1", "2024-02-01"): "target", ("L2", "2024-02-01"): "target",
                                 ("L1", "2024-04-25"): "target", ("L2", "2024-04-25"): "target",
                                 ("L3", "2024-04-25"): "new"})

        self.delayDisplay("6. Assess RECIST 1.1")
        timePoints, best, outcome = logic.assessRecist(measurements)
        (row,) = self._rows(timePoints)
        change = 100.0 * (sum(after.values()) - sum(before.values())) / sum(before.values())
        self.assertEqual(row["change_from_baseline_pct"], round(change, 2))  # written to 0.01 %
        self.assertLess(change, -30.0)
        self.assertEqual((row["target_response"], row["new_lesions"], row["overall_response"]),
                         ("PR", True, "PD"))
        self.assertEqual(self._rowsBy(best, "patient_id")["P7"]["response"], "PD")
        self.assertEqual(self._rowsBy(outcome)["L1"]["change_pct"], -50.0)

        self.delayDisplay("7. Spider and waterfall charts")
        spider, waterfall = logic.createResponsePlots(outcome, best)
        self.assertEqual(spider.GetNumberOfPlotSeriesNodes(), 2)
        self.assertEqual(waterfall.GetNumberOfPlotSeriesNodes(), 1)
        self.delayDisplay("End-to-end workflow passed")
