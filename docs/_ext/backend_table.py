"""``.. backend-table::``: the user guide's table of back ends, drawn from the registry
itself, so it lists whatever back ends exist when the site is built."""

from sphinx.util.docutils import SphinxDirective


class BackendTable(SphinxDirective):
    def run(self):
        from helmholtz import backends

        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 15 85",
            "",
            "   * - method",
            "     - what it does",
        ]
        for name, backend in backends().items():
            lines += [f'   * - ``"{name}"``', f"     - {backend.summary}"]
        return self.parse_text_to_nodes("\n".join(lines))


def setup(app):
    app.add_directive("backend-table", BackendTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
