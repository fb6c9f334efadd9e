"""What the tests stand on: `dbt` (build the project as a user does, each build in its own
folder), `sync` (run `sync` in-process or as the console script, read Bing, the table and the
state), `crash` (kill `sync run` at chosen moments and look at what Microsoft and the
warehouse hold) with `kills` (what the crash-safety modules share), `bing` (sync.bing's client
against the stand-in), `sdk` (the stand-in driven by the bingads SDK directly), `reference`
(bench/reference.py loaded from its file). The only thing replaced is Microsoft, by the
stand-in."""
