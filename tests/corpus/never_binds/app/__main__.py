import asyncio


async def main():
    # Alive forever, listening nowhere.
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
