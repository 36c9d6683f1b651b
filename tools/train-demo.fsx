// Usage: dotnet fsi tools/train-demo.fsx [WORK_DIR]   (from the repository root; needs `apt-get install bible-kjv`)
//
// Rebuilds the demo model shipped in engine/Gpt2Engine.Cli/DemoModel/: a 4-layer, 128-wide GPT-2 with the full
// 50,257-token vocabulary, trained from scratch for 800 steps of 8 x 256 tokens on the King James Version of the Bible (public
// domain; the text of Debian's bible-kjv-text package, printed by its `bible` program). Steps, all through the CLI:
// dump the text, `prepare` it into token shards, `train`, then `convert` the matrices to bf16. Takes about 15
// minutes on two idle cores. WORK_DIR (default artifacts/train-demo) keeps the text, shards and the f32 run.
open System
open System.Diagnostics
open System.IO

if fsi.CommandLineArgs |> Array.exists (fun a -> a = "--help" || a = "-h") then
    printfn "Usage: dotnet fsi tools/train-demo.fsx [WORK_DIR]   (from the repository root; needs `apt-get install bible-kjv`)"
    exit 0

let root = __SOURCE_DIRECTORY__ |> Path.GetDirectoryName
let work = fsi.CommandLineArgs |> Array.tryItem 1 |> Option.defaultValue (Path.Combine(root, "artifacts", "train-demo")) |> Path.GetFullPath
let demo = Path.Combine(root, "engine", "Gpt2Engine.Cli", "DemoModel")

/// Runs a program, streaming its output; stops the script if it fails. Returns its standard output when captured.
let run (program: string) (args: string list) (capture: bool) =
    let info = ProcessStartInfo(program, args, WorkingDirectory = root, RedirectStandardOutput = capture)
    use proc = Process.Start info
    let output = if capture then proc.StandardOutput.ReadToEnd() else ""
    proc.WaitForExit()
    if proc.ExitCode <> 0 then failwithf "%s %s exited with %d" program (String.Join(" ", args)) proc.ExitCode
    output

Directory.CreateDirectory work |> ignore
let text = Path.Combine(work, "kjv.txt")
if not (File.Exists text) then
    // `bible -f` prints "Ge1:1 In the beginning..."; keep the verses, drop the references.
    let verses = run "bible" [ "-f"; "Gen1:1-Rev22:21" ] true
    let lines = verses.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.map (fun line -> line.Substring(line.IndexOf(' ') + 1))
    File.WriteAllText(text, String.Join("\n", lines) + "\n")

run "dotnet" [ "build"; "engine/Gpt2Engine.Cli"; "-c"; "Release"; "-o"; Path.Combine(work, "bin") ] false |> ignore
let cli = Path.Combine(work, "bin", "gpt2-engine")
let data, trained = Path.Combine(work, "data"), Path.Combine(work, "run")
run cli [ "prepare"; "--out"; data; text ] false |> ignore
// A new run each time: train refuses an --out that holds one.
if Directory.Exists trained then Directory.Delete(trained, true)
run cli [ "train"; "--data"; data; "--out"; trained; "--layers"; "4"; "--channels"; "128"; "--heads"; "4"; "--context"; "256"
          "--steps"; "800"; "--batch"; "8"; "--seq"; "256"; "--lr"; "2e-3"; "--min-lr"; "2e-4"; "--warmup"; "40"
          "--eval-every"; "100"; "--eval-batches"; "10"; "--checkpoint-every"; "100"; "--seed"; "1337"; "--threads"; "2" ] false |> ignore
run cli [ "convert"; "--weights"; trained; "--dtype"; "bf16"; "--out"; Path.Combine(demo, "model.safetensors") ] false |> ignore
File.Copy(Path.Combine(trained, "config.json"), Path.Combine(demo, "config.json"), true)
printfn "demo model written to %s" demo
