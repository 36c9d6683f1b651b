// Usage: dotnet fsi tools/random-model.fsx <124M|355M|774M|1558M|n_vocab,n_ctx,n_embd,n_layer,n_head> <output-dir> [seed]
// Writes a random-weight GPT-2 of that shape in both official formats: <output-dir>/openai/ (hparams.json, checkpoint,
// model.ckpt.index, model.ckpt.data-00000-of-00001) and <output-dir>/model.safetensors (hyperparameters in its metadata).
// Init as GPT-2: embeddings and matrices N(0, 0.02), LayerNorm gains 1, biases 0. Build the library first:
//   dotnet build engine/Gpt2Engine -c Release
#r "../engine/Gpt2Engine/bin/Release/net10.0/Gpt2Engine.dll"

open System
open System.IO
open Gpt2Engine.Checkpoints
open Gpt2Engine.Model

let args = fsi.CommandLineArgs |> Array.skip 1
if args.Length < 2 || args[0] = "--help" then
    eprintfn "usage: dotnet fsi tools/random-model.fsx <124M|355M|774M|1558M|n_vocab,n_ctx,n_embd,n_layer,n_head> <output-dir> [seed]"
    exit (if args.Length > 0 && args[0] = "--help" then 0 else 2)

let config =
    match Gpt2Sizes.TryFind(args[0]) with
    | true, _, c -> c
    | _ ->
        match args[0].Split(',') |> Array.map int with
        | [| v; t; c; l; h |] -> Gpt2Config(v, t, c, l, h)
        | _ -> failwithf "not a size or n_vocab,n_ctx,n_embd,n_layer,n_head: %s" args[0]
let output = args[1]
let random = Random(if args.Length > 2 then int args[2] else 1234)

/// Standard normal samples by Box-Muller, scaled to N(0, std).
let normal (std: float) (count: int64) =
    let values = Array.zeroCreate<float32> (int count)
    let mutable i = 0
    while i < values.Length do
        let u1 = 1.0 - random.NextDouble()
        let r = sqrt (-2.0 * log u1) * std
        let angle = 2.0 * Math.PI * random.NextDouble()
        values[i] <- float32 (r * cos angle)
        if i + 1 < values.Length then values[i + 1] <- float32 (r * sin angle)
        i <- i + 2
    values

let clock = Diagnostics.Stopwatch.StartNew()
let parameters =
    ParameterLayout.For(config).Specs
    |> Seq.map (fun spec ->
        let values =
            if spec.Name.EndsWith ".bias" then Array.zeroCreate<float32> (int spec.Count)
            elif spec.Name.Contains "ln_" then Array.create (int spec.Count) 1.0f
            else normal 0.02 spec.Count
        spec.Name, values)
    |> dict
printfn "generated %s (%d parameters) in %.1f s" (string config) config.ParameterCount clock.Elapsed.TotalSeconds

clock.Restart()
Gpt2Checkpoints.WriteTensorFlowBundle(Path.Combine(output, "openai"), config, Collections.Generic.Dictionary(parameters))
printfn "wrote %s in %.1f s" (Path.Combine(output, "openai")) clock.Elapsed.TotalSeconds
clock.Restart()
Gpt2Checkpoints.WriteSafetensors(Path.Combine(output, "model.safetensors"), config, Collections.Generic.Dictionary(parameters))
printfn "wrote %s in %.1f s" (Path.Combine(output, "model.safetensors")) clock.Elapsed.TotalSeconds
