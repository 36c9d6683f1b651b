// Usage: dotnet build -c Release && dotnet fsi tools/bench-generation.fsx [WEIGHTS] [NEW_TOKENS] [THREADS]
//   e.g. dotnet fsi tools/bench-generation.fsx 124M 32 0
// Greedy decoding of the same prompt two ways, in one run: the Generator (prompt fed once, then one position per
// token through the KV cache) against the baseline of recomputing the whole sequence for every new token. Both must
// give the same tokens; prints tokens/s of each and their ratio.
// The CLI's output folder has the library and its dependencies side by side.
#r "../engine/Gpt2Engine.Cli/bin/Release/net10.0/System.Numerics.Tensors.dll"
#r "../engine/Gpt2Engine.Cli/bin/Release/net10.0/Gpt2Engine.dll"

open System.Diagnostics
open Gpt2Engine.Cpu
open Gpt2Engine.Generation
open Gpt2Engine.Model
open Gpt2Engine.Tokenization

let argv = fsi.CommandLineArgs |> Array.skip 1
if argv |> Array.contains "--help" then
    printfn "usage: dotnet fsi tools/bench-generation.fsx [WEIGHTS] [NEW_TOKENS] [THREADS]"
    exit 0
let arg i fallback = if argv.Length > i then argv.[i] else fallback
let weights = arg 0 "124M"
let newTokens = int (arg 1 "32")
let threads = int (arg 2 "0")

let backend = new CpuBackend(threads)
let model = Gpt2Model.Load(weights, backend)
let V = model.Config.VocabSize
let prompt = Gpt2Tokenizer.Default.Encode("The meaning of life is") |> Array.map (fun id -> id % V)
let options = GenerationOptions(MaxTokens = newTokens, Greedy = true, StopAtEndOfText = false)

let kvCache () =
    let clock = Stopwatch.StartNew()
    let ids = Generator(model).Generate(prompt, options) |> Seq.map (fun t -> t.Id) |> Seq.toArray
    ids, clock.Elapsed.TotalSeconds

let recompute () =
    let clock = Stopwatch.StartNew()
    let sequence = ResizeArray(prompt)
    for _ in 1 .. newTokens do
        let T = sequence.Count
        model.Forward(System.ReadOnlySpan(sequence.ToArray()), System.ReadOnlySpan.Empty, 1, T) |> ignore
        let logits = model.DownloadLogits()
        sequence.Add(Sampler.ArgMax(System.ReadOnlySpan(logits, (T - 1) * V, V)))
    sequence.GetRange(prompt.Length, newTokens).ToArray(), clock.Elapsed.TotalSeconds

kvCache () |> ignore // warm-up: page in the weights, JIT
let cachedIds, cachedSeconds = kvCache ()
let fullIds, fullSeconds = recompute ()
if cachedIds <> fullIds then failwith "the two decoders disagree"
printfn "%s, %s, prompt %d tokens, %d new tokens" model.Source backend.Name prompt.Length newTokens
printfn "KV cache (prefill + decode): %8.2f tokens/s" (float newTokens / cachedSeconds)
printfn "full recompute per token:    %8.2f tokens/s" (float newTokens / fullSeconds)
printfn "ratio:                       %8.2fx" (fullSeconds / cachedSeconds)
