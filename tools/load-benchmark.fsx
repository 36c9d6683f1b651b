// Usage: dotnet fsi tools/load-benchmark.fsx <weights> [--verify]
// Measures CheckpointLoader.Load (memory-mapped) on <weights> (a size, a checkpoint directory or a .safetensors file):
// load time (first in the process, with JIT, and again) and resident memory (VmRSS) before loading, after loading, and after touching every page of every tensor;
// the CRC-32C throughput over the resident tensors, and with --verify the time of `inspect --verify` (TensorFlow bundles). Build the library first:
//   dotnet build engine/Gpt2Engine -c Release
#r "../engine/Gpt2Engine/bin/Release/net10.0/Gpt2Engine.dll"

open System
open System.IO
open Gpt2Engine.Checkpoints

let args = fsi.CommandLineArgs |> Array.skip 1
if args.Length < 1 || args[0] = "--help" then
    eprintfn "usage: dotnet fsi tools/load-benchmark.fsx <weights> [--verify]"
    exit (if args.Length < 1 then 2 else 0)

/// Resident set size of this process in MiB, from /proc/self/status.
let residentMiB () =
    File.ReadLines "/proc/self/status"
    |> Seq.find (fun line -> line.StartsWith "VmRSS:")
    |> fun line -> float (line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0

// The first load in a process also pays for JIT compilation; it is reported apart and then measured again.
let clock = Diagnostics.Stopwatch.StartNew()
CheckpointLoader.Load(args[0]).Dispose()
let firstLoadMs = clock.Elapsed.TotalMilliseconds
GC.Collect()
let before = residentMiB ()
clock.Restart()
let weights = CheckpointLoader.Load(args[0], Console.Error)
let loadMs = clock.Elapsed.TotalMilliseconds
let afterLoad = residentMiB ()

// Read one byte per 4 KiB page of every tensor, so every page of the mapping is faulted in.
clock.Restart()
let mutable checksum = 0uy
for tensor in weights.Tensors do
    let bytes = tensor.AsSpan<byte>()
    let mutable i = 0
    while i < bytes.Length do
        checksum <- checksum ^^^ bytes[i]
        i <- i + 4096
let touchMs = clock.Elapsed.TotalMilliseconds
let afterTouch = residentMiB ()

printfn "%s: %s, %s, %d bytes of tensors" args[0] weights.Source (string weights.Config) weights.ByteLength
printfn "first load (JIT)     %8.1f ms" firstLoadMs
printfn "load                 %8.1f ms" loadMs
printfn "VmRSS before load    %8.1f MiB" before
printfn "VmRSS after load     %8.1f MiB (+%.1f)" afterLoad (afterLoad - before)
printfn "touch every page     %8.1f ms" touchMs
printfn "VmRSS after touch    %8.1f MiB (+%.1f)   [xor %d]" afterTouch (afterTouch - before) checksum

// CRC-32C throughput alone, over pages that are now resident.
clock.Restart()
let mutable crcs = 0u
for tensor in weights.Tensors do
    crcs <- crcs ^^^ Crc32C.Compute(tensor.Address, tensor.ByteLength)
printfn "crc32c, resident     %8.1f ms (%.2f GB/s, %s)" clock.Elapsed.TotalMilliseconds (float weights.ByteLength / clock.Elapsed.TotalSeconds / 1e9) (if Crc32C.IsHardwareAccelerated then "hardware" else "software")

if args |> Array.contains "--verify" then
    clock.Restart()
    let report = CheckpointInspector.Inspect(args[0], true)
    printfn "inspect --verify     %8.1f ms (fresh mapping, %d failed)" clock.Elapsed.TotalMilliseconds report.ChecksumFailures
weights.Dispose()
