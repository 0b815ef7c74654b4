"""The application layer: what the ``helmholtz`` command runs on top of the library.

- :mod:`~helmholtz.app.cli`: the command line (``helmholtz models``, ``fit``,
  ``fit-recording``, ``demo``, ``gallery``);
- :mod:`~helmholtz.app.zoo`: the table of zoo models the command line can build from a file;
- :mod:`~helmholtz.app.report`: a Fit written out for people (tables, plots, the Fit);
- :mod:`~helmholtz.app.recording_fit`: the main job, a Hodgkin-Huxley fit to a recording
  and its report;
- :mod:`~helmholtz.app.gallery`: building and serving the documentation site.

Imports point down: this layer uses the library (models, inference, diagnostics, data,
perception) and nothing in the library imports it.
"""
