// Usage: dotnet build -c Release && dotnet fsi tools/sample.fsx [WEIGHTS] [PROMPT] [MAX_TOKENS] [SEED]
//   e.g. dotnet fsi tools/sample.fsx 124M "The meaning of life is" 64 42
// Loads GPT-2 through the library, then streams one sample to stdout as it is generated (the same path as
// `gpt2-engine generate`, but through the library API: Generator.GenerateAsync and GeneratedTextWriter).
// The CLI's output folder has the library and its dependencies side by side.
#r "../engine/Gpt2Engine.Cli/bin/Release/net10.0/System.Numerics.Tensors.dll"
#r "../engine/Gpt2Engine.Cli/bin/Release/net10.0/Gpt2Engine.dll"
#r "System.IO.Pipelines"

open System
open System.IO.Pipelines
open Gpt2Engine.Generation
open Gpt2Engine.Model
open Gpt2Engine.Tokenization

let argv = fsi.CommandLineArgs |> Array.skip 1
if argv |> Array.contains "--help" then
    printfn "usage: dotnet fsi tools/sample.fsx [WEIGHTS] [PROMPT] [MAX_TOKENS] [SEED]"
    exit 0
let arg i fallback = if argv.Length > i then argv.[i] else fallback
let weights = arg 0 "124M"
let promptText = arg 1 "The meaning of life is"
let maxTokens = int (arg 2 "64")
let seed = uint64 (arg 3 "42")

let model = Gpt2Model.Load(weights)
let tokenizer = Gpt2Tokenizer.Default
let prompt = tokenizer.Encode(promptText)
let options = GenerationOptions(MaxTokens = maxTokens, Seed = seed, TopK = 40)
let generator = Generator(model, tokenizer)

let stdout' = PipeWriter.Create(Console.OpenStandardOutput())
let writer = GeneratedTextWriter(stdout', tokenizer, 1, false)
Console.Out.Write(promptText) // the console writer flushes at once, before the pipe's first bytes

let run () =
    task {
        let tokens = generator.GenerateAsync(prompt, options).GetAsyncEnumerator()
        let mutable going = true
        while going do
            let! more = tokens.MoveNextAsync()
            if more then
                let! readerThere = writer.WriteAsync(tokens.Current)
                going <- readerThere
            else
                going <- false
        let! _ = writer.CompleteAsync()
        do! tokens.DisposeAsync()
    }

run().Wait()
let stats = generator.Statistics
eprintfn "prompt %d tokens, %.1f tokens/s; generated %d tokens, %.1f tokens/s" stats.PromptTokens stats.PromptTokensPerSecond stats.GeneratedTokens stats.DecodedPositionsPerSecond
