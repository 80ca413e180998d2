"""The napari side of napari-dmqpm: reader, writer, sample data and (later) widgets.

This is the only package of napari-dmqpm that imports napari, qtpy or magicgui. Every
``python_name`` of ``napari.yaml`` points into it. Importing the package itself imports
nothing heavy; each module imports napari where (and when) it needs it.
"""
