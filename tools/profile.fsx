// Usage: dotnet fsi tools/profile.fsx [--weights W] [--threads 1,2] [--prompts 16,64,256] [--new-tokens 32] [--train B,T] [--out DIR]
// Profiles generation (each prompt length, each thread count) and one training step through the library's profiling
// backend, then writes DIR/profile.txt (per-operation breakdown), DIR/profile.json and DIR/bench.svg (decode time per token).
// Defaults: --weights 124M --threads 1,2 --prompts 16,64,256 --new-tokens 32 --train 4,64 --out profile-out.
// Build the library first: dotnet build -c Release
#r "../engine/Gpt2Engine/bin/Release/net10.0/Gpt2Engine.dll"

open System
open System.IO
open Gpt2Engine
open Gpt2Engine.Profiling

let usage = (File.ReadLines(Path.Combine(__SOURCE_DIRECTORY__, "profile.fsx")) |> Seq.head).Substring(3)

let rec parse (args: string list) (options: Map<string, string>) =
    match args with
    | [] -> options
    | ("--help" | "-h") :: _ -> printfn "%s" usage; exit 0
    | flag :: value :: rest when flag.StartsWith "--" -> parse rest (options.Add(flag, value))
    | other :: _ -> eprintfn "profile.fsx: error: unexpected '%s'\n%s" other usage; exit 2

let options = parse (List.ofArray fsi.CommandLineArgs |> List.tail) Map.empty
let get name fallback = options.TryFind name |> Option.defaultValue fallback
let ints (text: string) = text.Split(',') |> Array.map int

let run () =
    let weights = get "--weights" "124M"
    let train = ints (get "--train" "4,64")
    let settings = ProfileSettings(ints (get "--threads" "1,2"), ints (get "--prompts" "16,64,256"), int (get "--new-tokens" "32"), train[0], train[1])
    let outDir = get "--out" "profile-out"
    Directory.CreateDirectory outDir |> ignore
    use loaded = Checkpoints.CheckpointLoader.Load(weights)
    let report = Profiler.Run(loaded, (fun threads -> new Cpu.CpuBackend(threads) :> Model.Backend), settings, Tokenization.Gpt2Tokenizer.Default)
    report.WriteText(Console.Out)
    using (new StreamWriter(Path.Combine(outDir, "profile.txt"))) (fun w -> report.WriteText w)
    let json = Path.Combine(outDir, "profile.json")
    using (File.Create json) (fun s -> report.WriteJson s)
    Plotting.Plots.WriteAtomically(Path.Combine(outDir, "bench.svg"), Plotting.Plots.BenchChart json)
    printfn "wrote %s/profile.txt, profile.json, bench.svg" outDir

try run ()
with :? Gpt2Exception as e -> eprintfn "profile.fsx: error: %s" e.Message; exit 1
