"""write_evaluation_report: Table 1 from Results' own means, per-song plots, one file."""

import pytest

from mixinvert.evaluation import Results
from mixinvert.reporting import write_evaluation_report
from tests.reporting.conftest import Elements, assert_self_contained, small_results


def test_table_and_plots_in_one_self_contained_page(tmp_path):
    results = small_results()
    path = write_evaluation_report(results, tmp_path / "results.html")
    text = path.read_text(encoding="utf-8")
    assert_self_contained(text)
    assert "corpus &lt;test&gt; &amp; co" in text and "<test>" not in text
    page = Elements(text)
    assert len(page.find("img")) == 2 and all(a["src"].startswith("data:image/png;base64,") for a in page.find("img"))
    table = text.split('<table class="table1">')[1].split("</table>")[0]
    eami, sum_ = results.mean("eami"), results.mean("sum")
    assert table.index("<td>eami</td>") < table.index("<td>sum</td>")  # ranked by MRSD, like the markdown
    assert f"<b>{eami['mrsd']:.3f}</b>" in table and f"<b>{eami['mae']:.4f}</b>" in table
    assert f">{sum_['mrsd']:.3f}<" in table and f">{eami['seconds']:.2f}<" in table
    assert f">{eami['normalized_mae']:.3f}<" in table and f">{eami['gain_db']:.3g}<" in table
    assert ">75 %<" in table  # eami's intervals hold 6 of 8 true values; sum has none ("-")
    assert text.count("<td>song_0001</td>") == 2


def test_overwrite_refused_unless_asked(tmp_path):
    path = write_evaluation_report(small_results(), tmp_path / "results.html")
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_evaluation_report(small_results(), path)
    assert write_evaluation_report(small_results(), path, overwrite=True) == path
    with pytest.raises(ValueError, match="no results"):
        write_evaluation_report(Results("d", None, ["sum"]), tmp_path / "empty.html")
